using System.Net.Sockets;
using System.Text.Json;

namespace Hive.Testing;

/// <summary>A Server-Sent Events reader over a real HTTP connection (optionally with a tiny socket receive buffer: a slow consumer).</summary>
public sealed class SseClient : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseClient(HttpClient http, HttpResponseMessage response, StreamReader reader)
    {
        _http = http;
        _response = response;
        _reader = reader;
    }

    public string? LastId { get; private set; }

    /// <summary>Comment lines (": keep-alive") seen so far.</summary>
    public int Comments { get; private set; }

    public static async Task<SseClient> OpenAsync(Uri baseAddress, string path, string? lastEventId = null, int? receiveBuffer = null)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                if (receiveBuffer is { } size)
                {
                    socket.ReceiveBufferSize = size; // before connect: also caps the TCP window, so the server feels it
                }

                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        var http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        }

        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.That((int)response.StatusCode, Is.EqualTo(200), await Describe(response));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(), bufferSize: 1024);
        return new SseClient(http, response, reader);
    }

    private static async Task<string> Describe(HttpResponseMessage response) =>
        response.IsSuccessStatusCode ? string.Empty : await response.Content.ReadAsStringAsync();

    /// <summary>The next event (comments and heartbeats skipped); null at end of stream or timeout.</summary>
    public async Task<JsonElement?> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        string? id = null;
        try
        {
            while (await _reader.ReadLineAsync(cts.Token) is { } line)
            {
                if (line.StartsWith(':'))
                {
                    Comments++;
                }
                else if (line.StartsWith("id: ", StringComparison.Ordinal))
                {
                    id = line[4..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    LastId = id ?? LastId;
                    return JsonDocument.Parse(line[6..]).RootElement.Clone();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return null;
    }

    /// <summary>Reads until <paramref name="until"/> holds for an event (inclusive).</summary>
    public async Task<List<JsonElement>> ReadUntilAsync(Func<JsonElement, bool> until, TimeSpan timeout, Func<Task>? pace = null)
    {
        var events = new List<JsonElement>();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var e = await NextAsync(deadline - DateTime.UtcNow);
            if (e is null)
            {
                break;
            }

            events.Add(e.Value);
            if (until(e.Value))
            {
                return events;
            }

            if (pace is not null)
            {
                await pace();
            }
        }

        Assert.Fail($"the expected event did not arrive within {timeout.TotalSeconds} s; got {events.Count} events, last: {(events.Count > 0 ? events[^1].ToString() : "none")}");
        return events;
    }

    public async ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _response.Dispose();
        _http.Dispose();
        await Task.CompletedTask;
    }
}
