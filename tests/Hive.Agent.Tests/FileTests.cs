using System.Security.Cryptography;
using Google.Protobuf;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Agent.Tests;

[CancelAfter(60_000)]
public sealed class FileTests
{
    private AgentProcess _agent = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _agent = await AgentProcess.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _agent.DisposeAsync();

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-agent-files-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private async Task<WriteFileResponse> WriteAsync(string path, byte[] data, int chunk = 65536)
    {
        async IAsyncEnumerable<WriteFileRequest> Messages()
        {
            yield return new WriteFileRequest { Header = new WriteFileHeader { Path = path, CreateParents = true } };
            for (var offset = 0; offset < data.Length; offset += chunk)
            {
                await Task.Yield();
                yield return new WriteFileRequest { Data = ByteString.CopyFrom(data, offset, Math.Min(chunk, data.Length - offset)) };
            }
        }

        return await _agent.Channel.ClientStreamingAsync<WriteFileRequest, WriteFileResponse>("/hive.v1.Agent/WriteFile", Messages(), new CallOptions(TimeSpan.FromSeconds(30)));
    }

    private async Task<byte[]> ReadAsync(string path)
    {
        using var result = new MemoryStream();
        await foreach (var chunk in _agent.Channel.ServerStreamingAsync<ReadFileRequest, FileChunk>("/hive.v1.Agent/ReadFile", new ReadFileRequest { Path = path }, new CallOptions(TimeSpan.FromSeconds(30))))
        {
            result.Write(chunk.Data.Span);
        }

        return result.ToArray();
    }

    [Test]
    public async Task Binary_round_trip()
    {
        var data = RandomNumberGenerator.GetBytes((5 << 20) + 3);
        var path = Path.Combine(_dir, "a/b/blob.bin");
        var written = await WriteAsync(path, data);
        Assert.That(written.Size, Is.EqualTo((ulong)data.Length));
        Assert.That(await ReadAsync(path), Is.EqualTo(data));
        Assert.That(Directory.GetFiles(Path.Combine(_dir, "a/b")), Has.Length.EqualTo(1), "no temporary file is left");
    }

    [Test]
    public async Task Empty_file_round_trip()
    {
        var path = Path.Combine(_dir, "empty");
        await WriteAsync(path, []);
        Assert.That(await ReadAsync(path), Is.Empty);
    }

    [Test]
    public void Errors_have_status_codes()
    {
        var missing = Assert.ThrowsAsync<RpcException>(() => ReadAsync(Path.Combine(_dir, "nope")))!;
        Assert.That(missing.StatusCode, Is.EqualTo(StatusCode.NotFound));
        var directory = Assert.ThrowsAsync<RpcException>(() => ReadAsync(_dir))!;
        Assert.That(directory.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        var relative = Assert.ThrowsAsync<RpcException>(() => ReadAsync("relative/path"))!;
        Assert.That(relative.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
    }

    [Test]
    public async Task Listing_is_recursive_with_sizes_and_does_not_follow_symlinks()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "src/inner"));
        File.WriteAllText(Path.Combine(_dir, "src/main.rs"), "fn main() {}");
        File.WriteAllText(Path.Combine(_dir, "src/inner/x.txt"), "12345");
        File.CreateSymbolicLink(Path.Combine(_dir, "loop"), "/");
        var listing = await _agent.Channel.UnaryAsync<ListFilesRequest, ListFilesResponse>("/hive.v1.Agent/ListFiles", new ListFilesRequest { Path = _dir }, new CallOptions(TimeSpan.FromSeconds(30)));
        var entries = listing.Entries.ToDictionary(e => e.Path[_dir.Length..]);
        Assert.That(entries.Keys, Is.EquivalentTo(new[] { "/loop", "/src", "/src/inner", "/src/inner/x.txt", "/src/main.rs" }));
        Assert.That(entries["/src/inner/x.txt"].Size, Is.EqualTo(5));
        Assert.That(entries["/src"].Type, Is.EqualTo(EntryType.Directory));
        Assert.That(entries["/loop"].Type, Is.EqualTo(EntryType.Symlink));
        var notDir = Assert.ThrowsAsync<RpcException>(() => _agent.Channel.UnaryAsync<ListFilesRequest, ListFilesResponse>("/hive.v1.Agent/ListFiles", new ListFilesRequest { Path = Path.Combine(_dir, "src/main.rs") }, new CallOptions(TimeSpan.FromSeconds(30))))!;
        Assert.That(notDir.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
    }

    [Test]
    public async Task Large_upload_streams_without_growing_the_agent()
    {
        var before = Rss();
        var chunk = RandomNumberGenerator.GetBytes(64 * 1024);
        async IAsyncEnumerable<WriteFileRequest> Messages()
        {
            yield return new WriteFileRequest { Header = new WriteFileHeader { Path = Path.Combine(_dir, "big.bin") } };
            for (var i = 0; i < 4096; i++)
            {
                await Task.Yield();
                yield return new WriteFileRequest { Data = ByteString.CopyFrom(chunk) };
            }
        }

        var written = await _agent.Channel.ClientStreamingAsync<WriteFileRequest, WriteFileResponse>("/hive.v1.Agent/WriteFile", Messages(), new CallOptions(TimeSpan.FromSeconds(50)));
        Assert.That(written.Size, Is.EqualTo(256UL << 20));
        Assert.That(Rss() - before, Is.LessThan(100L << 20), "256 MiB must stream through, not accumulate");
    }

    private long Rss()
    {
        foreach (var line in File.ReadLines($"/proc/{_agent.Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }
}
