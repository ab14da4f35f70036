"""policies subpackage."""
