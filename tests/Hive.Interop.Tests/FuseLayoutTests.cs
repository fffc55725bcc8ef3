using System.Diagnostics;
using System.Runtime.InteropServices;
using Hive.Interop.Fuse;

namespace Hive.Interop.Tests;

/// <summary>Every mirrored struct matches the real C layout (compiled against the installed headers).</summary>
public sealed class FuseLayoutTests
{
    private static Dictionary<string, long> _c = null!;

    [OneTimeSetUp]
    public static async Task CompileAndRunAsync()
    {
        var dir = Directory.CreateTempSubdirectory("hive-fuse-layout-").FullName;
        try
        {
            var exe = Path.Combine(dir, "fuse_layout");
            var source = Path.Combine(AppContext.BaseDirectory, "native", "fuse_layout.c");
            var (code, output) = await RunAsync("gcc", "-Wall", "-Werror", "-I/usr/include/fuse3", "-o", exe, source);
            Assert.That(code, Is.Zero, "gcc failed:\n" + output);
            (code, output) = await RunAsync(exe);
            Assert.That(code, Is.Zero, output);
            _c = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(' '))
                .ToDictionary(p => p[0], p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static IEnumerable<TestCaseData> Sizes()
    {
        yield return new TestCaseData("sizeof(stat)", typeof(Stat));
        yield return new TestCaseData("sizeof(statvfs)", typeof(StatVfs));
        yield return new TestCaseData("sizeof(timespec)", typeof(Timespec));
        yield return new TestCaseData("sizeof(fuse_file_info)", typeof(FuseFileInfo));
        yield return new TestCaseData("sizeof(fuse_args)", typeof(FuseArgs));
        yield return new TestCaseData("sizeof(fuse_context)", typeof(FuseContext));
        yield return new TestCaseData("sizeof(fuse_operations)", typeof(FuseOperations));
        yield return new TestCaseData("sizeof(fuse_config)", typeof(FuseConfig));
        yield return new TestCaseData("sizeof(iovec)", typeof(Iovec));
        yield return new TestCaseData("sizeof(fuse_custom_io)", typeof(FuseCustomIo));
    }

    [TestCaseSource(nameof(Sizes))]
    public void Size_matches(string key, Type type) => Assert.That(Marshal.SizeOf(type), Is.EqualTo(_c[key]), key);

    private static IEnumerable<TestCaseData> Offsets()
    {
        (string C, Type Type, string Field)[] fields =
        [
            ("stat.st_ino", typeof(Stat), nameof(Stat.Ino)), ("stat.st_nlink", typeof(Stat), nameof(Stat.Nlink)),
            ("stat.st_mode", typeof(Stat), nameof(Stat.Mode)), ("stat.st_uid", typeof(Stat), nameof(Stat.Uid)),
            ("stat.st_gid", typeof(Stat), nameof(Stat.Gid)), ("stat.st_rdev", typeof(Stat), nameof(Stat.Rdev)),
            ("stat.st_size", typeof(Stat), nameof(Stat.Size)), ("stat.st_blksize", typeof(Stat), nameof(Stat.Blksize)),
            ("stat.st_blocks", typeof(Stat), nameof(Stat.Blocks)), ("stat.st_atim", typeof(Stat), nameof(Stat.Atime)),
            ("stat.st_mtim", typeof(Stat), nameof(Stat.Mtime)), ("stat.st_ctim", typeof(Stat), nameof(Stat.Ctime)),
            ("statvfs.f_blocks", typeof(StatVfs), nameof(StatVfs.Blocks)), ("statvfs.f_files", typeof(StatVfs), nameof(StatVfs.Files)),
            ("statvfs.f_fsid", typeof(StatVfs), nameof(StatVfs.Fsid)), ("statvfs.f_namemax", typeof(StatVfs), nameof(StatVfs.Namemax)),
            ("fuse_file_info.flags", typeof(FuseFileInfo), nameof(FuseFileInfo.Flags)), ("fuse_file_info.fh", typeof(FuseFileInfo), nameof(FuseFileInfo.Fh)),
            ("fuse_file_info.lock_owner", typeof(FuseFileInfo), nameof(FuseFileInfo.LockOwner)), ("fuse_file_info.poll_events", typeof(FuseFileInfo), nameof(FuseFileInfo.PollEvents)),
            ("fuse_args.argv", typeof(FuseArgs), nameof(FuseArgs.Argv)), ("fuse_args.allocated", typeof(FuseArgs), nameof(FuseArgs.Allocated)),
            ("iovec.iov_len", typeof(Iovec), nameof(Iovec.Length)),
            ("fuse_custom_io.writev", typeof(FuseCustomIo), nameof(FuseCustomIo.Writev)), ("fuse_custom_io.read", typeof(FuseCustomIo), nameof(FuseCustomIo.Read)),
            ("fuse_custom_io.splice_receive", typeof(FuseCustomIo), nameof(FuseCustomIo.SpliceReceive)), ("fuse_custom_io.splice_send", typeof(FuseCustomIo), nameof(FuseCustomIo.SpliceSend)),
            ("fuse_context.uid", typeof(FuseContext), nameof(FuseContext.Uid)), ("fuse_context.pid", typeof(FuseContext), nameof(FuseContext.Pid)),
            ("fuse_context.private_data", typeof(FuseContext), nameof(FuseContext.PrivateData)), ("fuse_context.umask", typeof(FuseContext), nameof(FuseContext.Umask)),
            ("fuse_operations.getattr", typeof(FuseOperations), nameof(FuseOperations.Getattr)), ("fuse_operations.rename", typeof(FuseOperations), nameof(FuseOperations.Rename)),
            ("fuse_operations.open", typeof(FuseOperations), nameof(FuseOperations.Open)), ("fuse_operations.read", typeof(FuseOperations), nameof(FuseOperations.Read)),
            ("fuse_operations.write", typeof(FuseOperations), nameof(FuseOperations.Write)), ("fuse_operations.statfs", typeof(FuseOperations), nameof(FuseOperations.Statfs)),
            ("fuse_operations.fsync", typeof(FuseOperations), nameof(FuseOperations.Fsync)), ("fuse_operations.setxattr", typeof(FuseOperations), nameof(FuseOperations.Setxattr)),
            ("fuse_operations.readdir", typeof(FuseOperations), nameof(FuseOperations.Readdir)), ("fuse_operations.init", typeof(FuseOperations), nameof(FuseOperations.Init)),
            ("fuse_operations.access", typeof(FuseOperations), nameof(FuseOperations.Access)), ("fuse_operations.create", typeof(FuseOperations), nameof(FuseOperations.Create)),
            ("fuse_operations.utimens", typeof(FuseOperations), nameof(FuseOperations.Utimens)), ("fuse_operations.fallocate", typeof(FuseOperations), nameof(FuseOperations.Fallocate)),
            ("fuse_operations.lseek", typeof(FuseOperations), nameof(FuseOperations.Lseek)),
            ("fuse_config.entry_timeout", typeof(FuseConfig), nameof(FuseConfig.EntryTimeout)), ("fuse_config.negative_timeout", typeof(FuseConfig), nameof(FuseConfig.NegativeTimeout)),
            ("fuse_config.attr_timeout", typeof(FuseConfig), nameof(FuseConfig.AttrTimeout)), ("fuse_config.hard_remove", typeof(FuseConfig), nameof(FuseConfig.HardRemove)),
            ("fuse_config.use_ino", typeof(FuseConfig), nameof(FuseConfig.UseIno)), ("fuse_config.auto_cache", typeof(FuseConfig), nameof(FuseConfig.AutoCache)),
            ("fuse_config.ac_attr_timeout", typeof(FuseConfig), nameof(FuseConfig.AcAttrTimeout)), ("fuse_config.nullpath_ok", typeof(FuseConfig), nameof(FuseConfig.NullpathOk)),
            ("fuse_config.modules", typeof(FuseConfig), nameof(FuseConfig.Modules)), ("fuse_config.debug", typeof(FuseConfig), nameof(FuseConfig.Debug)),
        ];
        return fields.Select(f => new TestCaseData(f.C, f.Type, f.Field).SetName("offset of " + f.C));
    }

    [TestCaseSource(nameof(Offsets))]
    public void Offset_matches(string key, Type type, string field) => Assert.That((long)Marshal.OffsetOf(type, field), Is.EqualTo(_c[key]), key);

    [Test]
    public void File_info_bit_field_constants_match()
    {
        Assert.That(_c["fuse_file_info.direct_io_word"], Is.EqualTo(FuseFileInfo.DirectIo));
        Assert.That(_c["fuse_file_info.keep_cache_word"], Is.EqualTo(FuseFileInfo.KeepCache));
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (process.ExitCode, await stdout + await stderr);
    }
}
