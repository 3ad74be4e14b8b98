"""Jobs: the library functions behind the commands, composed from the layers below."""
