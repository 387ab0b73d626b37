"""Functions surfaces: each module translates a transport into one domain call and back."""
