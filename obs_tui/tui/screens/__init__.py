"""The main screen (the four panes) and those pushed over it: help, a row's detail and the
too-small notice."""
