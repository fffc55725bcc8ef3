using System.Text;
using Hive.SbxProxy.Http;

namespace Hive.SbxProxy.Tests.Http;

public sealed class StrictParsingTests
{
    [TestCase("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27)]
    [TestCase("GET / HTTP/1.1\r\nHost: a\r\n", -1)]
    [TestCase("GET / HTTP/1.1\r\nHost: a\r\n\r", -1)]
    [TestCase("GET / HTTP/1.1\r\n\r\nbody\n", 18)]
    public void Heads_end_at_the_first_CRLFCRLF(string text, int end)
    {
        var scanned = 0;
        Assert.That(HttpReader.FindHeadEnd(Encoding.ASCII.GetBytes(text), ref scanned), Is.EqualTo(end));
    }

    [TestCase("GET / HTTP/1.1\nHost: a\r\n\r\n")]
    [TestCase("GET / HTTP/1.1\r\nHost: a\n\n")]
    [TestCase("GET / HTTP/1.1\r\nHost: a\r\r\n")]
    [TestCase("\n")]
    public void Bare_line_ends_in_a_head_are_refused(string text)
    {
        var scanned = 0;
        Assert.That(() => HttpReader.FindHeadEnd(Encoding.ASCII.GetBytes(text), ref scanned), Throws.TypeOf<HttpMessageException>().With.Property("Status").EqualTo(400));
    }

    [Test]
    public async Task A_head_split_across_reads_is_checked_once_per_byte()
    {
        var reader = new HttpReader(new TrickleStream(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
        Assert.That(await reader.ReadHeadAsync(1024, CancellationToken.None), Has.Length.EqualTo(27));
        var bad = new HttpReader(new TrickleStream(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n")));
        Assert.That(async () => await bad.ReadHeadAsync(1024, CancellationToken.None), Throws.TypeOf<HttpMessageException>());
    }

    [TestCase("5", 5L)]
    [TestCase("0", 0L)]
    [TestCase("00000a", 10L)]
    [TestCase("ff;name", 255L)]
    [TestCase("1;a=b;c=\"d;e\\\"\"", 1L)]
    [TestCase("1 ; a = b", 1L)]
    public void Chunk_sizes(string line, long size) => Assert.That(HttpReader.ChunkSize(line), Is.EqualTo(size));

    [TestCase("")]
    [TestCase(" 5")]
    [TestCase("5 x")]
    [TestCase("+5")]
    [TestCase("0x5")]
    [TestCase("1234567890abcdef")]
    [TestCase("5;")]
    [TestCase("5;a=")]
    [TestCase("5;a=\"b")]
    [TestCase("5;a=\"b\u0001\"")]
    [TestCase("5;a b")]
    [TestCase("5;a=b c")]
    public void Bad_chunk_size_lines(string line) =>
        Assert.That(() => HttpReader.ChunkSize(line), Throws.TypeOf<HttpMessageException>().With.Property("Status").EqualTo(400));

    [TestCase("")]
    [TestCase("X-Checksum: abc")]
    [TestCase("X-Empty:")]
    public void Good_trailers(string line) => Assert.That(() => HttpReader.CheckTrailer(line), Throws.Nothing);

    [TestCase(" folded")]
    [TestCase("X A: b")]
    [TestCase(": b")]
    [TestCase("X: a\u0000b")]
    [TestCase("Content-Length: 5")]
    [TestCase("transfer-encoding: chunked")]
    [TestCase("Host: other")]
    [TestCase("Authorization: Bearer x")]
    public void Bad_trailers(string line) =>
        Assert.That(() => HttpReader.CheckTrailer(line), Throws.TypeOf<HttpMessageException>());

    [Test]
    public void Tokens_are_removed_from_list_headers()
    {
        var head = HttpHead.Parse(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade, HTTP2-Settings\r\nConnection: upgrade\r\n\r\n"), request: true);
        head.RemoveToken("Connection", "upgrade");
        head.RemoveToken("Connection", "http2-settings");
        Assert.That(head.GetAll("Connection"), Is.EqualTo(new[] { "keep-alive" }));
    }

    /// <summary>Returns one byte per read.</summary>
    private sealed class TrickleStream(byte[] data) : Stream
    {
        private int _at;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position { get => _at; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_at >= data.Length || count == 0)
            {
                return 0;
            }

            buffer[offset] = data[_at++];
            return 1;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
