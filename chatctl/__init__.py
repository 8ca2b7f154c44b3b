"""`chatctl`, the operators' command line, and the dev stack runner (`make run`). The top of the
house: it may import every other package; none imports it. (The stack's port helpers are public
for the tests and benchmarks, which start servers the same way.)"""

from chatctl._main import app, main
from chatctl._stack import free_port, port_is_free, wait_for_port

__all__ = ["app", "free_port", "main", "port_is_free", "wait_for_port"]
