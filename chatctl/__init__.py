"""`chatctl`, the operators' command line, and the dev stack runner (`make run`). The top of the
house: it may import every other package; none imports it. (The stack's port helpers are public
for the tests and benchmarks, which start servers the same way.)"""

from chatctl._main import app, main
from chatctl._stack import free_port, port_is_free, wait_for_port
from chatctl._support import STACK_ENV_FILE, read_env_file, write_env_file

__all__ = [
    "STACK_ENV_FILE",
    "app",
    "free_port",
    "main",
    "port_is_free",
    "read_env_file",
    "wait_for_port",
    "write_env_file",
]
