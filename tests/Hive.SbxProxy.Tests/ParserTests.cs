using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Text;
using Hive.SbxProxy.Dns;
using Hive.SbxProxy.Http;
using Hive.SbxProxy.Llm;
using Hive.SbxProxy.Tcp;

namespace Hive.SbxProxy.Tests;

public sealed class ParserTests
{
    internal static byte[] Query(string name, ushort type, ushort id = 0x1234)
    {
        var bytes = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.AddRange(new byte[] { 0, (byte)(type >> 8), (byte)type, 0, 1 });
        return [.. bytes];
    }

    [Test]
    public void DnsQuestionAndAnswer()
    {
        var query = Query("API.Example.test", DnsQuestion.TypeA);
        var q = DnsQuestion.Parse(query)!.Value;
        Assert.That((q.Id, q.Name, q.Type, q.Class), Is.EqualTo(((ushort)0x1234, "api.example.test", DnsQuestion.TypeA, (ushort)1)));
        var answer = q.Answer(query, DnsQuestion.NoError, [10, 214, 0, 7]);
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(answer), Is.EqualTo(0x1234));
        Assert.That(answer[3] & 0x0f, Is.EqualTo(0), "rcode");
        Assert.That(answer[2] & 0x80, Is.EqualTo(0x80), "QR");
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(answer.AsSpan(6)), Is.EqualTo(1), "ANCOUNT");
        Assert.That(answer[^4..], Is.EqualTo(new byte[] { 10, 214, 0, 7 }));
        var nx = q.Answer(query, DnsQuestion.NxDomain, null);
        Assert.That(nx[3] & 0x0f, Is.EqualTo(3));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(nx.AsSpan(6)), Is.EqualTo(0));
    }

    [Test]
    public void MalformedDnsIsRejected()
    {
        Assert.That(DnsQuestion.Parse([1, 2, 3]), Is.Null);
        var two = Query("a.test", 1);
        two[5] = 2; // QDCOUNT 2
        Assert.That(DnsQuestion.Parse(two), Is.Null);
        var pointer = Query("a.test", 1);
        pointer[12] = 0xC0; // compression pointer in the question
        Assert.That(DnsQuestion.Parse(pointer), Is.Null);
        var truncated = Query("a.test", 1)[..^3];
        Assert.That(DnsQuestion.Parse(truncated), Is.Null);
        Assert.That(DnsQuestion.FormatError(two)![3] & 0x0f, Is.EqualTo(1));
    }

    [Test]
    public async Task ClientHelloServerName()
    {
        var capture = new CaptureStream();
        using var tls = new SslStream(capture);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "files.pypi.test" }, cts.Token);
        var hello = await capture.FirstWrite.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(ClientHello.ServerName(hello), Is.EqualTo("files.pypi.test"));
        Assert.That(ClientHello.ServerName(hello.AsSpan(0, 20)), Is.Null, "truncated record");
        Assert.That(ClientHello.ServerName("GET / HTTP/1.1\r\n"u8), Is.Null);
        capture.Close();
        Assert.That(async () => await handshake, Throws.Exception);
    }

    [Test]
    public void SyntheticNamesPersist()
    {
        var file = Path.GetTempFileName();
        try
        {
            var names = new SyntheticNames("10.214.0.0/16", file);
            var a = names.AddressFor("a.test")!;
            var b = names.AddressFor("b.test")!;
            Assert.That(a, Is.Not.EqualTo(b));
            Assert.That(names.AddressFor("a.test"), Is.EqualTo(a));
            Assert.That(names.NameFor(a), Is.EqualTo("a.test"));
            Assert.That(names.NameFor(IPAddress.Parse("10.214.9.9")), Is.Null);
            Assert.That(names.NameFor(IPAddress.Parse("10.213.0.1")), Is.Null);
            var again = new SyntheticNames("10.214.0.0/16", file);
            Assert.That(again.NameFor(b), Is.EqualTo("b.test"));
            Assert.That(again.AddressFor("c.test"), Is.Not.EqualTo(a).And.Not.EqualTo(b));
            var tiny = new SyntheticNames("10.1.0.0/28", Path.GetTempFileName());
            var handed = Enumerable.Range(0, 20).Select(i => tiny.AddressFor($"n{i}.test")).ToList();
            Assert.That(handed.Count(h => h is not null), Is.EqualTo(14), "network and broadcast addresses are never handed out");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public async Task ChunkedBodiesAreCopiedCanonically()
    {
        var body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT"u8.ToArray();
        var reader = new HttpReader(new MemoryStream(body));
        var output = new MemoryStream();
        var payload = new MemoryStream();
        var written = await reader.CopyChunkedAsync(output, d => payload.Write(d), CancellationToken.None);
        Assert.That(Encoding.ASCII.GetString(payload.ToArray()), Is.EqualTo("hello world"));
        var canonical = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"u8.ToArray(); // the extension is dropped
        Assert.That(output.ToArray(), Is.EqualTo(canonical));
        Assert.That(written, Is.EqualTo(canonical.Length));
        var rest = new byte[4];
        Assert.That(await reader.ReadAsync(rest, CancellationToken.None), Is.EqualTo(4));
        Assert.That(rest, Is.EqualTo("NEXT"u8.ToArray()));
        var bad = new HttpReader(new MemoryStream("zz\r\n"u8.ToArray()));
        Assert.That(async () => await bad.CopyChunkedAsync(Stream.Null, null, CancellationToken.None), Throws.TypeOf<HttpMessageException>());
    }

    [Test]
    public async Task HeadsAreSplitOnKeepAlive()
    {
        var two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray();
        var reader = new HttpReader(new MemoryStream(two));
        var first = HttpHead.Parse((await reader.ReadHeadAsync(1024, CancellationToken.None))!, request: true);
        var second = HttpHead.Parse((await reader.ReadHeadAsync(1024, CancellationToken.None))!, request: true);
        Assert.That((first.StartLine[1], second.StartLine[1]), Is.EqualTo(("/a", "/b")));
        Assert.That(await reader.ReadHeadAsync(1024, CancellationToken.None), Is.Null);
        Assert.That(() => HttpHead.Parse("GET / HTTP/1.1\r\n Host: folded\r\n\r\n"u8.ToArray(), true), Throws.TypeOf<HttpMessageException>());
        Assert.That(() => HttpHead.Parse("GET / HTTP/2\r\n\r\n"u8.ToArray(), true), Throws.TypeOf<HttpMessageException>());
        var big = new HttpReader(new MemoryStream(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nX: " + new string('a', 5000) + "\r\n\r\n")));
        Assert.That(async () => await big.ReadHeadAsync(1024, CancellationToken.None), Throws.TypeOf<HttpMessageException>().With.Property("Status").EqualTo(431));
    }

    [Test]
    public void LlmCallsFromOpenAi()
    {
        Assert.That(LlmCalls.Detect("POST", "/v1/chat/completions"), Is.EqualTo(LlmApi.OpenAiChat));
        Assert.That(LlmCalls.Detect("GET", "/v1/chat/completions"), Is.Null);
        var plain = LlmCalls.Parse(LlmApi.OpenAiChat, "/v1/chat/completions", "", """{"model":"gpt-4o","messages":[]}"""u8.ToArray(),
            """{"id":"x","model":"gpt-4o-2024","usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}"""u8.ToArray(), null, "application/json");
        Assert.That((plain.Provider, plain.Model, plain.InputTokens, plain.OutputTokens, plain.Stream), Is.EqualTo(("openai", "gpt-4o-2024", 12L, 34L, false)));
        var sse = "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n";
        var streamed = LlmCalls.Parse(LlmApi.OpenAiChat, "/v1/chat/completions", "", """{"model":"gpt-4o","stream":true}"""u8.ToArray(), Encoding.UTF8.GetBytes(sse), null, "text/event-stream");
        Assert.That((streamed.InputTokens, streamed.OutputTokens, streamed.Stream), Is.EqualTo((5L, 7L, true)));
        var responses = LlmCalls.Parse(LlmApi.OpenAiResponses, "/v1/responses", "", """{"model":"o4"}"""u8.ToArray(),
            Encoding.UTF8.GetBytes("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"o4\",\"usage\":{\"input_tokens\":3,\"output_tokens\":9}}}\n\n"), null, "text/event-stream");
        Assert.That((responses.Model, responses.InputTokens, responses.OutputTokens), Is.EqualTo(("o4", 3L, 9L)));
    }

    [Test]
    public void LlmCallsFromAnthropicAndGemini()
    {
        var sse = """
            event: message_start
            data: {"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":25,"output_tokens":1}}}

            event: content_block_delta
            data: {"type":"content_block_delta","delta":{"text":"Hi"}}

            event: message_delta
            data: {"type":"message_delta","usage":{"output_tokens":15}}

            """;
        var call = LlmCalls.Parse(LlmApi.AnthropicMessages, "/v1/messages", "", """{"model":"claude-x","stream":true}"""u8.ToArray(), Encoding.UTF8.GetBytes(sse), null, "text/event-stream");
        Assert.That((call.Provider, call.Model, call.InputTokens, call.OutputTokens, call.Stream), Is.EqualTo(("anthropic", "claude-x", 25L, 15L, true)));

        using var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            z.Write("""{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6}}"""u8);
        }

        Assert.That(LlmCalls.Detect("POST", "/v1beta/models/gemini-2.0-flash:generateContent"), Is.EqualTo(LlmApi.GeminiGenerate));
        var gemini = LlmCalls.Parse(LlmApi.GeminiGenerate, "/v1beta/models/gemini-2.0-flash:generateContent", "", "{}"u8.ToArray(), gz.ToArray(), "gzip", "application/json");
        Assert.That((gemini.Provider, gemini.Model, gemini.InputTokens, gemini.OutputTokens, gemini.Stream), Is.EqualTo(("gemini", "gemini-2.0-flash", 4L, 6L, false)));
        var array = LlmCalls.Parse(LlmApi.GeminiGenerate, "/v1beta/models/g:streamGenerateContent", "", "{}"u8.ToArray(),
            """[{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1}},{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":8}}]"""u8.ToArray(), null, "application/json");
        Assert.That((array.OutputTokens, array.Stream), Is.EqualTo((8L, true)));
        var garbage = LlmCalls.Parse(LlmApi.OpenAiChat, "/v1/chat/completions", "", "not json"u8.ToArray(), "<html>"u8.ToArray(), "gzip", null);
        Assert.That((garbage.InputTokens, garbage.OutputTokens), Is.EqualTo((0L, 0L)));
    }

    /// <summary>Keeps the first write (a ClientHello) and never answers.</summary>
    private sealed class CaptureStream : Stream
    {
        private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<byte[]> FirstWrite { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => 0;

        public override long Position { get => 0; set { } }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            _closed.Task.Wait();
            return 0;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _closed.Task.WaitAsync(cancellationToken);
            return 0;
        }

        public override void Write(byte[] buffer, int offset, int count) => FirstWrite.TrySetResult(buffer[offset..(offset + count)]);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            FirstWrite.TrySetResult(buffer.ToArray());
            return ValueTask.CompletedTask;
        }

        public override long Seek(long offset, SeekOrigin origin) => 0;

        public override void SetLength(long value)
        {
        }

        public override void Close()
        {
            _closed.TrySetResult();
            base.Close();
        }
    }
}
