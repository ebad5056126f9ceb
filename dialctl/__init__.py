"""dialctl: the operator CLI of the dial-task pipeline (docs/design.md, "Runtime control")."""
