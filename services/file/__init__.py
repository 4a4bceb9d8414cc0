"""The file service: uploads to object storage, content checks, thumbnails, quotas."""
