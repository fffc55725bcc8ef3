"""Raw system calls against a sandbox's init (PID 1), run inside the sandbox by the attack suite.

Every operation prints "<return value> <errno>" per call it makes, on one line, so a test can
assert the exact refusal. Arguments are passed as C longs (ctypes would truncate them to int).

usage: python3 pid1_attacks.py syscall NR [ARG...]          any system call
       python3 pid1_attacks.py pidfd-getfd PID FD           pidfd_open(PID), then pidfd_getfd
       python3 pid1_attacks.py vm-readv PID ADDRESS         process_vm_readv of 8 bytes
       python3 pid1_attacks.py setsig SIGNAL                F_SETSIG on a pipe of our own
       python3 pid1_attacks.py dumpable                     prctl(PR_GET_DUMPABLE) of this process
"""
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(nr, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return result, ctypes.get_errno()


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def main(op, *rest):
    numbers = [int(a, 0) for a in rest]
    if op == "syscall":
        results = [call(*numbers)]
    elif op == "pidfd-getfd":
        pid, fd = numbers
        opened = call(434, pid, 0)  # pidfd_open
        results = [opened, call(438, opened[0], fd, 0)]  # pidfd_getfd
    elif op == "vm-readv":
        pid, address = numbers
        buffer = ctypes.create_string_buffer(8)
        local = Iovec(ctypes.cast(buffer, ctypes.c_void_p), 8)
        remote = Iovec(address, 8)
        results = [call(310, pid, ctypes.addressof(local), 1, ctypes.addressof(remote), 1, 0)]  # process_vm_readv
    elif op == "setsig":
        (signal,) = numbers
        read_end, _ = os.pipe()
        results = [call(72, read_end, 10, signal)]  # fcntl(F_SETSIG)
    elif op == "dumpable":
        results = [call(157, 3, 0, 0, 0, 0)]  # prctl(PR_GET_DUMPABLE)
    else:
        sys.exit(f"unknown operation {op}")
    print(" ".join(f"{r} {e}" for r, e in results))


main(*sys.argv[1:])
