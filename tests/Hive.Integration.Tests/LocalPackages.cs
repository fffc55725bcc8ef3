using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Hive.Integration.Tests;

/// <summary>
/// Packages the toolchain tests install inside a sandbox, made here on the host (nothing is
/// fetched from a registry): a .deb whose maintainer script adds a system user and hands it a
/// directory, a wheel, an npm tarball, and a tar archive with files owned by another user.
/// </summary>
internal static class LocalPackages
{
    public const string DebName = "hive-demo";

    /// <summary>The system user the .deb's postinst adds; it owns /var/lib/hive-demo (mode 0750) afterwards.</summary>
    public const string DebUser = "hivedemo";

    /// <summary>hive-demo_1.0_all.deb, built with dpkg-deb: /usr/share/hive-demo/README and a postinst that runs useradd, chown and chmod.</summary>
    public static async Task<byte[]> DebAsync()
    {
        var root = Directory.CreateTempSubdirectory("hive-deb-").FullName;
        try
        {
            var pkg = Path.Combine(root, "pkg");
            Directory.CreateDirectory(Path.Combine(pkg, "DEBIAN"));
            Directory.CreateDirectory(Path.Combine(pkg, "usr", "share", DebName));
            Directory.CreateDirectory(Path.Combine(pkg, "var", "lib", DebName));
            await File.WriteAllTextAsync(Path.Combine(pkg, "usr", "share", DebName, "README"), "hive demo package\n");
            await File.WriteAllTextAsync(Path.Combine(pkg, "DEBIAN", "control"), $"""
                Package: {DebName}
                Version: 1.0
                Architecture: all
                Maintainer: Hive tests <tests@invalid>
                Description: a package whose maintainer script adds a system user

                """);
            var postinst = Path.Combine(pkg, "DEBIAN", "postinst");
            await File.WriteAllTextAsync(postinst, $"""
                #!/bin/sh
                set -e
                if ! getent passwd {DebUser} >/dev/null; then
                    useradd --system --home-dir /var/lib/{DebName} --shell /usr/sbin/nologin {DebUser}
                fi
                chown -R {DebUser}:{DebUser} /var/lib/{DebName}
                chmod 0750 /var/lib/{DebName}

                """);
            File.SetUnixFileMode(postinst, (UnixFileMode)0b111_101_101);
            var deb = Path.Combine(root, $"{DebName}_1.0_all.deb");
            var (exit, stdout, stderr) = await Host.RunAsync("dpkg-deb", "--root-owner-group", "--build", pkg, deb);
            Assert.That(exit, Is.Zero, $"dpkg-deb: {stdout}{stderr}");
            return await File.ReadAllBytesAsync(deb);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A pure-Python wheel (PEP 427) of <paramref name="distribution"/> with one module whose VALUE is <paramref name="value"/>.</summary>
    public static byte[] Wheel(string distribution, string version, string value)
    {
        var module = distribution.Replace('-', '_');
        var info = $"{module}-{version}.dist-info";
        var files = new Dictionary<string, string>
        {
            [$"{module}/__init__.py"] = $"VALUE = {value}\n",
            [$"{info}/METADATA"] = $"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n",
            [$"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: hive-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        };
        var record = new StringBuilder();
        foreach (var (path, content) in files)
        {
            var digest = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(content))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            record.Append(path).Append(",sha256=").Append(digest).Append(',').Append(Encoding.UTF8.GetByteCount(content)).Append('\n');
        }

        files[$"{info}/RECORD"] = record.Append(info).Append("/RECORD,,\n").ToString();
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (path, content) in files)
            {
                using var entry = zip.CreateEntry(path).Open();
                entry.Write(Encoding.UTF8.GetBytes(content));
            }
        }

        return stream.ToArray();
    }

    /// <summary>An npm package tarball (package/package.json, package/index.js) with a postinstall script that leaves a marker file.</summary>
    public static byte[] NpmTarball(string name, string version, string marker) => TarGz(
    [
        ("package/package.json", $$$"""{"name": "{{{name}}}", "version": "{{{version}}}", "main": "index.js", "scripts": {"postinstall": "node -e \"require('fs').writeFileSync('{{{marker}}}', 'installed')\""}}""", 0, 0),
        ("package/index.js", "module.exports = { answer: 42 };\n", 0, 0),
    ]);

    /// <summary>A tar archive of one file owned by uid/gid <paramref name="owner"/>, mode 0640.</summary>
    public static byte[] TarOwnedBy(string path, int owner)
    {
        using var stream = new MemoryStream();
        using (var tar = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, path) { Uid = owner, Gid = owner, Mode = (UnixFileMode)0b110_100_000, DataStream = new MemoryStream("data\n"u8.ToArray()) };
            tar.WriteEntry(entry);
        }

        return stream.ToArray();
    }

    private static byte[] TarGz((string Path, string Content, int Uid, int Gid)[] files)
    {
        using var stream = new MemoryStream();
        using (var gzip = new GZipStream(stream, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            foreach (var (path, content, uid, gid) in files)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { Uid = uid, Gid = gid, Mode = (UnixFileMode)0b110_100_100, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
            }
        }

        return stream.ToArray();
    }
}
