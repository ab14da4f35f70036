"""Hostile programs for the sandbox's test set: data, never import the modules in this folder.

Every payload only aims at harmless markers (`/tmp/corrigible_escape_<name>`), so an accidental
import would do no damage, but the files are meant to be read as text and run through
`corrigible.policies.sandbox.run_program`.
"""
