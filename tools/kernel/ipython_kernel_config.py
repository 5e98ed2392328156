# Kernel configuration for the course's .venv (`make install` copies it to .venv/etc/ipython/).
#
# ipykernel >= 7 logs "Kernel is running over TCP without encryption ..." at every start when the kernel
# manager chose TCP. nbval, jupyter-book (through jupyter-cache/nbclient) and nbconvert all start kernels on
# 127.0.0.1 with a connection file only the current user can read, and offer no setting to switch to the IPC
# transport, so the warning is noise in every build log. Drop exactly that message; every other log line stays.
import logging


class _DropLocalTcpNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Kernel is running over TCP without encryption")


logging.getLogger("IPKernelApp").addFilter(_DropLocalTcpNotice())
