"""What developers, tests and bench run locally; never deployed (.funcignore). devhost never imports it."""
