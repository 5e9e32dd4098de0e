"""bottomless-cli: browse, restore, verify and remove backups in S3."""
