#!/usr/bin/env python3
"""Points the bundled glibc loader and libc away from the sandbox's own tree.

The agent runs as PID 1 inside every sandbox with the sandbox's root filesystem as its "/", and
that tree belongs to the sandbox. Stock glibc reads /etc/ld.so.preload and /etc/ld.so.cache and
falls back to /lib, /usr/lib, ... for any library not found on LD_LIBRARY_PATH; the .NET runtime
dlopens libraries lazily (liblttng-ust-tracepoint.so.0 at start, libssl, libgssapi_krb5, ... on
use). Each of those is a way for the sandbox to run its code inside PID 1 at the next restart.
libc itself reads /etc/nsswitch.conf (which names NSS modules to dlopen, a name with a "/" in it
being a path) and loads iconv modules from a fixed directory.

The paths are compiled into the binaries, so they are rewritten here, byte for byte and at the
same length (the loader keeps the lengths of its search directories in a separate table):

  ld.so   /etc/ld.so.preload   -> /.hive/no-preload   (missing: nothing is preloaded)
          /etc/ld.so.cache     -> /.hive/no-cache     (missing: no cache, only directories)
          /lib/x86_64-linux-gnu/, /usr/lib/x86_64-linux-gnu/  -> /.hive/lib/ (padded with "/")
          /usr/lib/            -> /.hive/ (padded: the bundle's root, which holds no libraries)
          /lib/                -> /sys/ (too short for /.hive; the loader insists on an absolute
                                  path, and the container's sysfs is read-only and holds no files
                                  anyone can create)
  libc    /etc/nsswitch.conf   -> /.hive/nsswitch.nf  (missing: glibc's built-in defaults, "files"
                                  and "dns", which live in libc itself; the first 16 bytes are
                                  also rewritten where the compiler copied them as a constant)
          /usr/lib/x86_64-linux-gnu/gconv -> /.hive/lib/gconv (padded with "/"; missing)

/.hive is a read-only bind mount of the bundle, so nothing can be planted at these paths. No tool
edits strings inside an ELF (patchelf changes headers only), hence this script. Every rewrite must
match at least once and no original may remain: a glibc laid out differently fails the build
instead of yielding a loader that still reads the sandbox's files.

usage: confine-libs.py LIB_DIR
"""
import sys
from pathlib import Path


def pad(path: bytes, length: int) -> bytes:
    """A directory path stretched to `length` with extra slashes before the last component."""
    assert path.endswith(b"/") and len(path) <= length
    return path[:-1] + b"/" * (length - len(path) + 1)


def same_length(old: bytes, new: bytes) -> bytes:
    assert len(new) <= len(old), (old, new)
    return new + b"\0" * (len(old) - len(new))


SYSTEM_DIRS = [b"/lib/x86_64-linux-gnu/", b"/usr/lib/x86_64-linux-gnu/", b"/lib/", b"/usr/lib/"]


def system_dirs_rewrite() -> tuple[bytes, bytes]:
    """The loader's search directories, one NUL-separated block (it holds two copies)."""
    old = b"\0".join(SYSTEM_DIRS) + b"\0"
    new = [pad(b"/.hive/lib/", len(d)) if len(d) >= len(b"/.hive/lib/")
           else pad(b"/.hive/", len(d)) if len(d) >= len(b"/.hive/")
           else b"/sys/" for d in SYSTEM_DIRS]
    return old, b"\0".join(new) + b"\0"


GCONV = b"/usr/lib/x86_64-linux-gnu/gconv"

REWRITES = {
    "ld-linux-x86-64.so.2": [
        (b"/etc/ld.so.preload\0", same_length(b"/etc/ld.so.preload\0", b"/.hive/no-preload\0")),
        (b"/etc/ld.so.cache\0", same_length(b"/etc/ld.so.cache\0", b"/.hive/no-cache\0")),
        system_dirs_rewrite(),
    ],
    "libc.so.6": [
        (b"/etc/nsswitch.co", b"/.hive/nsswitch."),
        (GCONV, pad(b"/.hive/lib/", len(GCONV) - len(b"gconv")) + b"gconv"),
    ],
}

# Nothing of these may be left afterwards.
FORBIDDEN = {
    # (--help still mentions /etc/ld.so.cache, followed by a newline: text, not a path it opens.)
    "ld-linux-x86-64.so.2": [b"/etc/ld.so.preload", b"/etc/ld.so.cache\0", b"/lib/x86_64-linux-gnu/\0", b"\0/lib/\0", b"\0/usr/lib/\0"],
    "libc.so.6": [b"/etc/nsswitch", GCONV],
}


def main() -> int:
    lib = Path(sys.argv[1])
    for name, rewrites in REWRITES.items():
        path = lib / name
        data = path.read_bytes()
        for old, new in rewrites:
            assert len(old) == len(new), (old, new)
            count = data.count(old)
            if count == 0:
                print(f"confine-libs: {old!r} not found in {path}: unknown glibc layout", file=sys.stderr)
                return 1
            data = data.replace(old, new)
        left = [f for f in FORBIDDEN[name] if f in data]
        if left:
            print(f"confine-libs: {path} still contains {left!r}", file=sys.stderr)
            return 1
        path.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
