using System.Runtime.InteropServices;

namespace Hive.Interop.Fuse;

/// <summary>
/// Debian's libfuse3 3.14 high-level API (<c>libfuse3.so.3</c>). Hand-written because Tmds.Fuse is
/// not available in our package registry; symbols and layouts as measured in DESIGN.md.
/// </summary>
public static unsafe partial class LibFuse
{
    private const string Library = "libfuse3.so.3";

    [LibraryImport(Library, EntryPoint = "fuse_new_31")]
    public static partial void* fuse_new(FuseArgs* args, FuseOperations* operations, nuint size, void* privateData);

    [LibraryImport(Library, EntryPoint = "fuse_mount", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int fuse_mount(void* fuse, string mountpoint);

    [LibraryImport(Library, EntryPoint = "fuse_unmount")]
    public static partial void fuse_unmount(void* fuse);

    [LibraryImport(Library, EntryPoint = "fuse_destroy")]
    public static partial void fuse_destroy(void* fuse);

    [LibraryImport(Library, EntryPoint = "fuse_exit")]
    public static partial void fuse_exit(void* fuse);

    [LibraryImport(Library, EntryPoint = "fuse_loop_cfg_create")]
    public static partial void* fuse_loop_cfg_create();

    [LibraryImport(Library, EntryPoint = "fuse_loop_cfg_destroy")]
    public static partial void fuse_loop_cfg_destroy(void* config);

    [LibraryImport(Library, EntryPoint = "fuse_loop_cfg_set_max_threads")]
    public static partial void fuse_loop_cfg_set_max_threads(void* config, uint maxThreads);

    [LibraryImport(Library, EntryPoint = "fuse_loop_cfg_set_clone_fd")]
    public static partial void fuse_loop_cfg_set_clone_fd(void* config, uint value);

    [LibraryImport(Library, EntryPoint = "fuse_loop_mt_312")]
    public static partial int fuse_loop_mt(void* fuse, void* config);

    [LibraryImport(Library, EntryPoint = "fuse_get_session")]
    public static partial void* fuse_get_session(void* fuse);

    [LibraryImport(Library, EntryPoint = "fuse_session_fd")]
    public static partial int fuse_session_fd(void* session);

    /// <summary>Replaces how the session reads requests from and writes replies to /dev/fuse (see <see cref="FuseCustomIo"/>).</summary>
    [LibraryImport(Library, EntryPoint = "fuse_session_custom_io")]
    public static partial int fuse_session_custom_io(void* session, FuseCustomIo* io, int fd);

    /// <summary>The calling process's supplementary groups (read from /proc); the count, or a negative errno.</summary>
    [LibraryImport(Library, EntryPoint = "fuse_getgroups")]
    public static partial int fuse_getgroups(int size, uint* list);

    [LibraryImport(Library, EntryPoint = "fuse_get_context")]
    public static partial FuseContext* fuse_get_context();
}
