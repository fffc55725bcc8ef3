using Hive.Protos.V1;

namespace Hive.Wire.Tests;

[CancelAfter(60_000)]
public sealed class WireTests
{
    private EchoServer _server = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _server = await EchoServer.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _server.DisposeAsync();

    private IEnumerable<GrpcChannel> Channels()
    {
        yield return GrpcChannel.ForUnixSocket(_server.SocketPath);
        yield return GrpcChannel.ForAddress(new Uri($"http://127.0.0.1:{_server.Port}"));
    }

    private static CallOptions Within(double seconds) => new(TimeSpan.FromSeconds(seconds));

    [Test]
    public async Task Unary_round_trip_on_unix_socket_and_tcp()
    {
        foreach (var channel in Channels())
        {
            using (channel)
            {
                var reply = await channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = "hi ✓" }, Within(10));
                Assert.That(reply.Text, Is.EqualTo("hi ✓"));
                var empty = await channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest(), Within(10));
                Assert.That(empty.Text, Is.Empty, "an empty message is a zero-length frame");
            }
        }
    }

    [Test]
    public void Status_and_percent_encoded_detail_cross_the_wire()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var detail = "file '/x y' not found: ünïcode %25 \n second line";
        var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Fail", new EchoRequest { Text = detail }, Within(10)))!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.NotFound));
        Assert.That(ex.Detail, Is.EqualTo(detail));
    }

    [Test]
    public void Unknown_method_is_unimplemented()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Nope", new EchoRequest(), Within(10)))!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.Unimplemented));
    }

    [Test]
    public void Unexpected_server_exceptions_do_not_leak_internals()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = "boom" }, Within(10)))!;
        Assert.That(ex.StatusCode, Is.AnyOf(StatusCode.Unknown, StatusCode.Internal));
        Assert.That(ex.Detail, Does.Not.Contain("at Hive."), "no stack trace on the wire");
    }

    [Test]
    public async Task Deadline_exceeded_cancels_the_handler()
    {
        _server.ResetCancelled();
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = "slow", DelayMs = 10_000 }, Within(0.3)))!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
        await _server.HandlerCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Test]
    public async Task Client_cancellation_cancels_the_handler()
    {
        _server.ResetCancelled();
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        Assert.CatchAsync<OperationCanceledException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = "slow", DelayMs = 10_000 }, new CallOptions(null, cts.Token)));
        await _server.HandlerCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Test]
    public async Task Server_streaming_many_and_large_messages()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var indexes = new List<int>();
        await foreach (var reply in channel.ServerStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Count", new EchoRequest { Text = "x", Count = 2000 }, Within(30)))
        {
            indexes.Add(reply.Index);
        }

        Assert.That(indexes, Is.EqualTo(Enumerable.Range(0, 2000)));

        var big = new string('b', 4 << 20);
        var count = 0;
        await foreach (var reply in channel.ServerStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Count", new EchoRequest { Text = big, Count = 3 }, Within(30)))
        {
            Assert.That(reply.Text, Has.Length.EqualTo(big.Length));
            count++;
        }

        Assert.That(count, Is.EqualTo(3));
    }

    [Test]
    public async Task Server_stream_error_after_some_messages()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var received = 0;
        var ex = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in channel.ServerStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Count", new EchoRequest { Count = 10, DelayMs = 7 }, Within(10)))
            {
                received++;
            }
        })!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.Aborted));
        Assert.That(ex.Detail, Is.EqualTo("stopped after 3"));
        Assert.That(received, Is.EqualTo(3));
        await Task.CompletedTask;
    }

    [Test]
    public async Task Client_streaming_many_chunks()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        static async IAsyncEnumerable<EchoRequest> Words()
        {
            for (var i = 0; i < 5000; i++)
            {
                await Task.Yield();
                yield return new EchoRequest { Text = "ab" };
            }
        }

        var reply = await channel.ClientStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Collect", Words(), Within(30));
        Assert.That(reply.Index, Is.EqualTo(5000));
        Assert.That(reply.Text, Is.EqualTo("10000 chars"));
    }

    [Test]
    public void Missing_socket_is_unavailable()
    {
        using var channel = GrpcChannel.ForUnixSocket("/nonexistent/hive-wire-test.sock");
        var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest(), Within(5)))!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.Unavailable));
    }

    [Test]
    public async Task Hundred_concurrent_calls_on_one_channel()
    {
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
        var replies = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = i.ToString(System.Globalization.CultureInfo.InvariantCulture), DelayMs = 20 }, Within(30))));
        Assert.That(replies.Select(r => r.Text), Is.EqualTo(Enumerable.Range(0, 100).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }
}
