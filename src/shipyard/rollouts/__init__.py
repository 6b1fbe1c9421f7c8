"""Safe rollouts as pure logic: the spec, the state machine, the gates and sequential statistics, the evidence."""
