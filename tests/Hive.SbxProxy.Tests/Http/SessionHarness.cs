using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Hive.Events.Spool;
using Hive.Policy.Net;
using Hive.Protos.V1;
using Hive.SbxProxy.Audit;
using Hive.SbxProxy.Http;
using Hive.SbxProxy.Tls;

namespace Hive.SbxProxy.Tests.Http;

/// <summary>
/// One real <see cref="HttpSession"/> between a client socket (the test, as the sandbox) and an
/// upstream server on 127.0.0.1 that logs every byte it receives and answers each request head it
/// recognises. Names map to 127.0.0.1 (allowed as 127.0.0.1/32) or wherever a test says; events
/// are read back from the proxy's spool.
/// </summary>
internal sealed partial class SessionHarness : IAsyncDisposable
{
    private readonly string _dir;
    private readonly TcpListener _upstream;
    private readonly StringBuilder _received = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Secrets _secrets;
    private readonly NetAudit _audit;
    private readonly CertificateAuthority _ca;

    private SessionHarness(string dir, TcpListener upstream, ProxyState state, Secrets secrets, NetAudit audit, CertificateAuthority ca)
    {
        _dir = dir;
        _upstream = upstream;
        State = state;
        _secrets = secrets;
        _audit = audit;
        _ca = ca;
    }

    public ProxyState State { get; }

    public int UpstreamPort => ((IPEndPoint)_upstream.LocalEndpoint).Port;

    public string SecretsDir => Path.Combine(_dir, "secrets");

    /// <summary>The raw response the upstream sends for a request head (default: 200 "ok").</summary>
    public Func<string, string> Answer { get; set; } = _ => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// <summary>Everything the upstream received so far, on every connection.</summary>
    public string Received
    {
        get
        {
            lock (_received)
            {
                return _received.ToString();
            }
        }
    }

    public static SessionHarness Start(string egressJson = "", Dictionary<string, string>? resolve = null, string[]? allowCidrs = null)
    {
        var dir = Directory.CreateTempSubdirectory("hive-proxy-test-").FullName;
        Directory.CreateDirectory(Path.Combine(dir, "spool"));
        Directory.CreateDirectory(Path.Combine(dir, "secrets"));
        CertificateAuthority.Init(Path.Combine(dir, "ca"), "test");
        var config = new ProxyConfig
        {
            Sandbox = "t",
            ListenAddress = "127.0.0.1",
            CaDir = Path.Combine(dir, "ca"),
            SpoolDir = Path.Combine(dir, "spool"),
            SecretsDir = Path.Combine(dir, "secrets"),
            NamesFile = Path.Combine(dir, "names"),
            Egress = egressJson,
            Resolve = resolve ?? new() { ["up.test"] = "127.0.0.1" },
            AllowCidrs = [.. allowCidrs ?? ["127.0.0.1/32"]],
            NetPool = "10.220.0.0/16",
            SyntheticPool = "10.221.0.0/16",
        };
        var secrets = new Secrets(config.SecretsDir);
        var audit = new NetAudit(config.SpoolDir, () => secrets.KnownValues);
        var ca = CertificateAuthority.Load(config.CaDir);
        var state = new ProxyState(config, ProxyState.ParsePolicy(egressJson), audit, secrets, ca, new Upstream(config, ProxyState.AddressPolicy(config, new HostAddresses(TimeProvider.System))));
        var upstream = new TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var harness = new SessionHarness(dir, upstream, state, secrets, audit, ca);
        _ = Task.Run(harness.ServeAsync);
        return harness;
    }

    public void SetSecret(string name, string value, string[] hosts, bool allowHttp) =>
        File.WriteAllText(Path.Combine(SecretsDir, name), StoredSecret.Serialize(value, hosts, allowHttp));

    /// <summary>Sends <paramref name="request"/> as the sandbox on a connection to <paramref name="host"/>:<see cref="UpstreamPort"/>, then everything the proxy answered until it closed or the sandbox's side ended.</summary>
    public async Task<string> ExchangeAsync(string request, string host = "up.test", int? port = null)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var sandbox = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await sandbox.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var proxySide = await listener.AcceptSocketAsync();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var session = Task.Run(async () =>
        {
            try
            {
                await using var s = new HttpSession(State, host, port ?? UpstreamPort, tls: false, new HttpReader(new NetworkStream(proxySide, ownsSocket: true)));
                await s.RunAsync(timeout.Token);
            }
            finally
            {
                proxySide.Dispose();
            }
        });
        await sandbox.SendAsync(Encoding.Latin1.GetBytes(request));
        sandbox.Shutdown(SocketShutdown.Send);
        var answer = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while ((n = await sandbox.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            answer.Write(buffer, 0, n);
        }

        await session.WaitAsync(timeout.Token);
        return Encoding.Latin1.GetString(answer.ToArray());
    }

    /// <summary>Every event the proxy spooled so far.</summary>
    public List<Event> Events()
    {
        using var consumer = new SpoolConsumer(Path.Combine(_dir, "spool"));
        var payloads = new List<ReadOnlyMemory<byte>>();
        consumer.Collect(payloads, 16 << 20);
        return [.. payloads.Select(p => Event.Parser.ParseFrom(p.Span))];
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _upstream.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => ServeConnectionAsync(connection));
        }
    }

    /// <summary>Answers every head whose first line is a request line (bodies are never one: chunk data and sizes do not look like it).</summary>
    private async Task ServeConnectionAsync(Socket connection)
    {
        using var c = connection;
        var buffer = new byte[8192];
        var text = new StringBuilder();
        var answered = 0;
        try
        {
            int n;
            while ((n = await c.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                var chunk = Encoding.Latin1.GetString(buffer, 0, n);
                lock (_received)
                {
                    _received.Append(chunk);
                }

                text.Append(chunk);
                int end;
                while ((end = text.ToString().IndexOf("\r\n\r\n", answered, StringComparison.Ordinal)) >= 0)
                {
                    var head = text.ToString()[answered..(end + 4)];
                    answered = end + 4;
                    if (RequestLine().IsMatch(head))
                    {
                        await c.SendAsync(Encoding.Latin1.GetBytes(Answer(head)));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    [GeneratedRegex(@"^[A-Z]+ \S+ HTTP/1\.[01]\r\n")]
    private static partial Regex RequestLine();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _upstream.Stop();
        _audit.Dispose();
        _ca.Dispose();
        _stop.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
