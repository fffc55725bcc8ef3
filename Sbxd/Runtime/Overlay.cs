using Hive.Interop;
using Microsoft.Win32.SafeHandles;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Mounts an overlayfs whose layers the kernel cannot name to the sandbox. overlayfs prints its
/// layer options in every mountinfo that shows the mount — the container's own included — exactly
/// as they were given. So each layer is opened as an O_PATH descriptor first and handed over as
/// <c>/proc/self/fd/N</c>: the kernel resolves that while mounting and afterwards prints only the
/// number, which says nothing about the host.
/// </summary>
/// <remarks>
/// Measured on 6.18, the alternatives print host paths or cost more: the new mount API's
/// descriptor-based <c>lowerdir+</c>/<c>upperdir</c> (<c>FSCONFIG_SET_FD</c>) prints the layer's
/// resolved path; relative paths print as given but need the mounting process's working directory,
/// which is shared by every thread of Sbxd.
/// </remarks>
internal static class Overlay
{
    /// <summary>
    /// Mounts <paramref name="lowers"/> (top first) and, when given, the <paramref name="writable"/> upper
    /// layer with its work dir at <paramref name="target"/>. Without an upper layer the kernel wants at
    /// least two lower ones, and the mount is read-only. <paramref name="openLower"/> opens a lower layer
    /// (default: an O_PATH descriptor of the directory; an idmapped clone of it for a user namespace).
    /// </summary>
    public static void Mount(string source, string target, IReadOnlyList<string> lowers, (string Upper, string Work)? writable, ulong flags, Func<string, SafeFileHandle>? openLower = null)
    {
        var handles = new List<SafeFileHandle>();
        try
        {
            string Layer(string path, Func<string, SafeFileHandle> open)
            {
                var handle = open(path);
                handles.Add(handle);
                return Libc.ProcFdPath(handle);
            }

            string Plain(string path) => Layer(path, Libc.OpenDirectoryPath);

            var options = "lowerdir=" + string.Join(':', lowers.Select(l => Layer(l, openLower ?? Libc.OpenDirectoryPath)));
            if (writable is var (upper, work))
            {
                options += ",upperdir=" + Plain(upper) + ",workdir=" + Plain(work);
            }

            if (Libc.mount(source, target, "overlay", flags, options) != 0)
            {
                throw SyscallException.FromLastError("mount(overlay)", target);
            }
        }
        finally
        {
            // The mount holds its own references to the layers (a private clone of an idmapped one);
            // the descriptors were only names.
            foreach (var handle in handles)
            {
                handle.Dispose();
            }
        }
    }
}
