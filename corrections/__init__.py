"""corrections subpackage."""
