"""Network boot over HTTP: iPXE scripts, the install script, files,
monitoring and service endpoints."""
