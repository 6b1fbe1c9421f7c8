"""Alert rules over the monitoring report: declaration, the pure evaluator, and the payload channels read."""
