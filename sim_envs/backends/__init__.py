"""backends subpackage."""
