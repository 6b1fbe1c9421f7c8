"""One module per framework, imported only when a model of that flavor is saved or loaded."""
