"""memory subpackage."""
