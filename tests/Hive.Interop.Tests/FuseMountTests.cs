using System.Runtime.InteropServices;
using System.Text;
using Hive.Interop.Fuse;

namespace Hive.Interop.Tests;

/// <summary>
/// The binding end to end: a tiny read-only file system (one directory, one file) served from
/// this process through a real /dev/fuse mount, read with ordinary file APIs, then unmounted.
/// </summary>
[CancelAfter(60_000)]
public sealed unsafe class FuseMountTests
{
    private static readonly byte[] Content = Encoding.UTF8.GetBytes("hello from libfuse3\n");

    [Test]
    public void A_file_system_served_from_dotnet_mounts_reads_lists_and_unmounts()
    {
        var mountpoint = Directory.CreateTempSubdirectory("hive-fuse-").FullName;
        var operations = (FuseOperations*)NativeMemory.AllocZeroed((nuint)sizeof(FuseOperations));
        operations->Getattr = &Getattr;
        operations->Readdir = &Readdir;
        operations->Open = &Open;
        operations->Read = &Read;

        var argv0 = Marshal.StringToCoTaskMemUTF8("hive-fuse-test");
        var argv = (byte**)NativeMemory.Alloc(2, (nuint)sizeof(nint));
        argv[0] = (byte*)argv0;
        argv[1] = null;
        var args = new FuseArgs { Argc = 1, Argv = argv, Allocated = 0 };
        var fuse = LibFuse.fuse_new(&args, operations, (nuint)sizeof(FuseOperations), null);
        Assert.That(fuse is not null, "fuse_new failed");
        Assert.That(LibFuse.fuse_mount(fuse, mountpoint), Is.Zero, "fuse_mount failed");
        var config = LibFuse.fuse_loop_cfg_create();
        LibFuse.fuse_loop_cfg_set_max_threads(config, 4);
        var loop = new Thread(() => LibFuse.fuse_loop_mt((void*)(nint)fuse, config)) { IsBackground = true, Name = "fuse-loop" };
        var fusePtr = (nint)fuse;
        loop.Start();
        try
        {
            var text = Task.Run(() => File.ReadAllText(Path.Combine(mountpoint, "hello.txt"))).WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            Assert.That(text, Is.EqualTo("hello from libfuse3\n"));
            var entries = Task.Run(() => Directory.GetFileSystemEntries(mountpoint)).WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            Assert.That(entries.Select(Path.GetFileName), Is.EqualTo(new[] { "hello.txt" }));
            Assert.That(new FileInfo(Path.Combine(mountpoint, "hello.txt")).Length, Is.EqualTo(Content.Length));
            Assert.That(File.Exists(Path.Combine(mountpoint, "missing")), Is.False);
            Assert.Throws<UnauthorizedAccessException>(() => File.WriteAllText(Path.Combine(mountpoint, "hello.txt"), "x"));
            Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Contain(mountpoint));
        }
        finally
        {
            LibFuse.fuse_exit((void*)fusePtr);
            LibFuse.fuse_unmount((void*)fusePtr);
            loop.Join(TimeSpan.FromSeconds(10));
            LibFuse.fuse_loop_cfg_destroy(config);
            LibFuse.fuse_destroy((void*)fusePtr);
            NativeMemory.Free(operations);
            NativeMemory.Free(argv);
            Marshal.FreeCoTaskMem(argv0);
        }

        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(mountpoint), "unmounted");
        Directory.Delete(mountpoint);
    }

    private static string PathOf(byte* path) => Marshal.PtrToStringUTF8((nint)path) ?? string.Empty;

    [UnmanagedCallersOnly]
    private static int Getattr(byte* path, Stat* stat, FuseFileInfo* fi)
    {
        *stat = default;
        switch (PathOf(path))
        {
            case "/":
                stat->Mode = 0x4000 | 0b101_101_101; // S_IFDIR | 0555
                stat->Nlink = 2;
                return 0;
            case "/hello.txt":
                stat->Mode = 0x8000 | 0b100_100_100; // S_IFREG | 0444
                stat->Nlink = 1;
                stat->Size = Content.Length;
                return 0;
            default:
                return -2; // ENOENT
        }
    }

    [UnmanagedCallersOnly]
    private static int Readdir(byte* path, void* buffer, delegate* unmanaged<void*, byte*, Stat*, long, int, int> filler, long offset, FuseFileInfo* fi, int flags)
    {
        if (PathOf(path) != "/")
        {
            return -2;
        }

        foreach (var name in new[] { ".", "..", "hello.txt" })
        {
            var bytes = Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* p = bytes)
            {
                filler(buffer, p, null, 0, 0);
            }
        }

        return 0;
    }

    [UnmanagedCallersOnly]
    private static int Open(byte* path, FuseFileInfo* fi)
    {
        if (PathOf(path) != "/hello.txt")
        {
            return -2;
        }

        return (fi->Flags & 3) != 0 ? -13 : 0; // O_ACCMODE != O_RDONLY -> EACCES
    }

    [UnmanagedCallersOnly]
    private static int Read(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        if (offset >= Content.Length)
        {
            return 0;
        }

        var n = (int)Math.Min((long)size, Content.Length - offset);
        Content.AsSpan((int)offset, n).CopyTo(new Span<byte>(buffer, n));
        return n;
    }
}
