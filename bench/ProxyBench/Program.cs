using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// The measuring side of bench/proxy (driven by bench/proxy, which sets up sandbox, mitmproxy and netns):
//   proxy-bench certs DIR NAME...            test CA + one wildcard-capable leaf for NAMES (PEM)
//   proxy-bench upstream PORT CERT KEY       Kestrel HTTPS upstream: GET / -> 64 bytes, keep-alive
//   proxy-bench latency URL CA N [--proxy URL]             sequential keep-alive requests on one connection: p50/p99 µs
//   proxy-bench load URL CA SECONDS CONNS [--proxy URL]    keep-alive requests from CONNS connections: req/s
//   proxy-bench handshakes URL_TEMPLATE CA N                new TLS connection per request; {i} in the host = a new name each time
return args.FirstOrDefault() switch
{
    "certs" => Certs(args[1], args[2..]),
    "upstream" => await UpstreamAsync(int.Parse(args[1]), args[2], args[3]),
    "latency" => await LatencyAsync(new Uri(args[1]), args[2], int.Parse(args[3]), Proxy(args)),
    "load" => await LoadAsync(new Uri(args[1]), args[2], double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), int.Parse(args[4]), Proxy(args)),
    "handshakes" => await HandshakesAsync(args[1], args[2], int.Parse(args[3])),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: proxy-bench certs|upstream|latency|load|handshakes ... (see bench/proxy)");
    return 2;
}

static Uri? Proxy(string[] args) => Array.IndexOf(args, "--proxy") is var i and >= 0 && i + 1 < args.Length ? new Uri(args[i + 1]) : null;

static int Certs(string dir, string[] names)
{
    using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    var caRequest = new CertificateRequest("CN=hive bench upstream CA", caKey, HashAlgorithmName.SHA256);
    caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
    caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
    using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
    using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    var request = new CertificateRequest("CN=" + names[0], key, HashAlgorithmName.SHA256);
    var san = new SubjectAlternativeNameBuilder();
    foreach (var name in names)
    {
        san.AddDnsName(name);
    }

    san.AddIpAddress(IPAddress.Loopback); // the direct reference run connects to 127.0.0.1
    request.CertificateExtensions.Add(san.Build());
    request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
    using var leaf = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [7, 7, 7]);
    File.WriteAllText(Path.Combine(dir, "upstream-ca.pem"), ca.ExportCertificatePem());
    File.WriteAllText(Path.Combine(dir, "upstream.pem"), leaf.ExportCertificatePem());
    File.WriteAllText(Path.Combine(dir, "upstream.key"), key.ExportPkcs8PrivateKeyPem());
    return 0;
}

static async Task<int> UpstreamAsync(int port, string certFile, string keyFile)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
    var cert = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l =>
    {
        l.Protocols = HttpProtocols.Http1;
        l.UseHttps(cert);
    }));
    var app = builder.Build();
    var body = new byte[64];
    Array.Fill(body, (byte)'x');
    app.MapGet("/", (HttpContext c) => Results.Bytes(body, "text/plain"));
    await app.StartAsync();
    Console.WriteLine("ready");
    await app.WaitForShutdownAsync();
    return 0;
}

static HttpClient Client(string caFile, Uri? proxy, int connections)
{
    var roots = new X509Certificate2Collection();
    roots.ImportFromPemFile(caFile);
    var handler = new SocketsHttpHandler
    {
        MaxConnectionsPerServer = connections,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        UseProxy = proxy is not null,
        Proxy = proxy is null ? null : new WebProxy(proxy),
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                using var c = new X509Certificate2(certificate);
                return chain.Build(c);
            },
        },
    };
    return new HttpClient(handler) { DefaultRequestVersion = HttpVersion.Version11, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
}

static double Percentile(List<double> sorted, double p)
{
    var k = (sorted.Count - 1) * p / 100;
    var f = (int)k;
    var c = Math.Min(f + 1, sorted.Count - 1);
    return sorted[f] + ((sorted[c] - sorted[f]) * (k - f));
}

static async Task<int> LatencyAsync(Uri url, string ca, int n, Uri? proxy)
{
    using var client = Client(ca, proxy, 1);
    // Warm-up: connection, certificate, and the JIT's tiering of every hop (client, proxy, upstream).
    for (var i = 0; i < 2000; i++)
    {
        (await client.GetAsync(url)).EnsureSuccessStatusCode().Dispose();
    }

    return await MeasureAsync(n, _ => (client, url));
}

/// <summary>Times n GETs (each on the client/URL <paramref name="next"/> gives) and prints p50, p99 and mean in µs.</summary>
static async Task<int> MeasureAsync(int n, Func<int, (HttpClient Client, Uri Url)> next)
{
    var samples = new List<double>(n);
    for (var i = 0; i < n; i++)
    {
        var (client, url) = next(i);
        var t = Stopwatch.GetTimestamp();
        using var response = await client.GetAsync(url);
        await response.Content.ReadAsByteArrayAsync();
        samples.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
        response.EnsureSuccessStatusCode();
    }

    samples.Sort();
    Console.WriteLine($"{Percentile(samples, 50):F0} {Percentile(samples, 99):F0} {samples.Average():F0}");
    return 0;
}

static async Task<int> LoadAsync(Uri url, string ca, double seconds, int connections, Uri? proxy)
{
    using var client = Client(ca, proxy, connections);
    var stop = DateTime.UtcNow.AddSeconds(1);
    long count = 0, errors = 0;
    async Task Worker(bool counting)
    {
        while (DateTime.UtcNow < stop)
        {
            try
            {
                using var response = await client.GetAsync(url);
                await response.Content.ReadAsByteArrayAsync();
                if (counting)
                {
                    Interlocked.Increment(ref response.IsSuccessStatusCode ? ref count : ref errors);
                }
            }
            catch (HttpRequestException)
            {
                Interlocked.Increment(ref errors);
            }
        }
    }

    await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Worker(false))); // warm-up: connections, certificates
    stop = DateTime.UtcNow.AddSeconds(seconds);
    var watch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Worker(true)));
    Console.WriteLine($"{count / watch.Elapsed.TotalSeconds:F0} {errors}");
    return 0;
}

static async Task<int> HandshakesAsync(string template, string ca, int n)
{
    // A new client per request: a new TCP connection and TLS handshake every time.
    var clients = new List<HttpClient>();
    try
    {
        return await MeasureAsync(n, i =>
        {
            var client = Client(ca, null, 1);
            clients.Add(client);
            return (client, new Uri(template.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));
        });
    }
    finally
    {
        clients.ForEach(c => c.Dispose());
    }
}
