"""Small real programs that tests run under procrun. Each prints a ready line the test waits for."""
