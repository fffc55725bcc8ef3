using System.Text.Json;
using System.Threading.Channels;

namespace Hive.Client;

/// <summary>
/// A running command: <see cref="Stdout"/> and <see cref="Stderr"/> as they are produced, stdin
/// open until <see cref="CloseStdinAsync"/>, <see cref="Exit"/> when it ends. Disposing kills it.
/// </summary>
public sealed class ExecStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly Func<string, ReadOnlyMemory<byte>, bool, CancellationToken, Task> _stdin;
    private readonly Channel<ReadOnlyMemory<byte>> _stdout = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
    private readonly Channel<ReadOnlyMemory<byte>> _stderr = Channel.CreateUnbounded<ReadOnlyMemory<byte>>();
    private readonly CancellationTokenSource _stop = new();

    private ExecStream(HttpResponseMessage response, string id, int pid, Func<string, ReadOnlyMemory<byte>, bool, CancellationToken, Task> stdin)
    {
        _response = response;
        _stdin = stdin;
        Id = id;
        Pid = pid;
    }

    public string Id { get; }

    public int Pid { get; }

    public IAsyncEnumerable<ReadOnlyMemory<byte>> Stdout => _stdout.Reader.ReadAllAsync();

    public IAsyncEnumerable<ReadOnlyMemory<byte>> Stderr => _stderr.Reader.ReadAllAsync();

    /// <summary>Completes once the command has ended and all its output was delivered.</summary>
    public Task<ExecExit> Exit { get; private set; } = null!;

    internal static async Task<ExecStream> StartAsync(HttpResponseMessage response, Func<string, ReadOnlyMemory<byte>, bool, CancellationToken, Task> stdin, CancellationToken cancellationToken)
    {
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        var first = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) ?? throw new HiveApiException(0, "the exec stream ended before the command started");
        using var started = JsonDocument.Parse(first);
        var stream = new ExecStream(response, started.RootElement.GetProperty("id").GetString()!, started.RootElement.GetProperty("pid").GetInt32(), stdin);
        stream.Exit = stream.ReadAsync(reader);
        return stream;
    }

    public Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => _stdin(Id, data, false, cancellationToken);

    public Task WriteStdinAsync(string text, CancellationToken cancellationToken = default) => _stdin(Id, System.Text.Encoding.UTF8.GetBytes(text), false, cancellationToken);

    /// <summary>Ends the command's input (after <paramref name="data"/>, if any).</summary>
    public Task CloseStdinAsync(ReadOnlyMemory<byte> data = default, CancellationToken cancellationToken = default) => _stdin(Id, data, true, cancellationToken);

    /// <summary>Kills the command (its process group) if it still runs.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _response.Dispose();
        try
        {
            await Exit.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HiveApiException or HttpRequestException)
        {
            // Killed on purpose.
        }

        _stop.Dispose();
    }

    private async Task<ExecExit> ReadAsync(StreamReader reader)
    {
        try
        {
            while (await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(line);
                var m = doc.RootElement;
                switch (m.GetProperty("type").GetString())
                {
                    case "stdout":
                        await _stdout.Writer.WriteAsync(m.GetProperty("data").GetBytesFromBase64()).ConfigureAwait(false);
                        break;
                    case "stderr":
                        await _stderr.Writer.WriteAsync(m.GetProperty("data").GetBytesFromBase64()).ConfigureAwait(false);
                        break;
                    case "exit":
                        return new ExecExit(
                            m.GetProperty("exit_code").GetInt32(),
                            m.GetProperty("duration_ms").GetInt64(),
                            m.GetProperty("timed_out").GetBoolean(),
                            m.TryGetProperty("signal", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : null,
                            m.GetProperty("stdout_bytes").GetInt64(),
                            m.GetProperty("stderr_bytes").GetInt64());
                }
            }

            throw new HiveApiException(0, "the exec stream ended before the command's exit status");
        }
        finally
        {
            _stdout.Writer.TryComplete();
            _stderr.Writer.TryComplete();
            reader.Dispose();
        }
    }
}
