"""An example opsfix plugin package: `file_mode` judges a file's permission bits and
`fix_mode` takes away the bits it should not have. See docs/plugins.md in opsfix."""
