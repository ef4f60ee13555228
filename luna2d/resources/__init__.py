"""The HTTP API: thin Klein apps that parse, make one store call and
serialize. ``root.build`` composes them into the one site resource."""
