"""robots subpackage."""
