using Hive.Controller.Api;
using Hive.Controller.Hosting;

namespace Hive.Controller.Images;

/// <summary>Images on this host: <c>&lt;image-dir&gt;/&lt;name&gt;/{rootfs,image.json}</c>, usually a symlink to a content-hashed build.</summary>
internal sealed class ImageCatalog(ControllerOptions options)
{
    /// <summary>
    /// The image's root filesystem with symlinks resolved, so a sandbox keeps the exact lower
    /// layer it was created with even if the image name is later pointed at a rebuild.
    /// </summary>
    public string ResolveRootfs(string image)
    {
        var dir = Path.Combine(options.ImageDir, image);
        var info = new DirectoryInfo(dir);
        var target = info.LinkTarget is not null ? info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? dir : dir;
        var rootfs = Path.Combine(target, "rootfs");
        if (!Directory.Exists(rootfs))
        {
            throw ApiException.BadRequest($"unknown image '{image}' (available: {string.Join(", ", List())})");
        }

        return rootfs;
    }

    public IReadOnlyList<string> List() =>
        Directory.Exists(options.ImageDir)
            ? Directory.EnumerateDirectories(options.ImageDir)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Where(n => Directory.Exists(Path.Combine(options.ImageDir, n, "rootfs")) && new DirectoryInfo(Path.Combine(options.ImageDir, n)).LinkTarget is not null)
                .Order(StringComparer.Ordinal)
                .ToList()
            : [];
}
