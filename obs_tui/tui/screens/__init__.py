"""The main screen (the four panes) and those pushed over it: help, a row's detail,
go to a time, and the too-small notice."""
