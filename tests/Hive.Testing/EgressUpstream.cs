using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Hive.Testing;

/// <summary>
/// The egress tests' upstream servers (Resources/egress_upstream.py) on 127.0.0.1: HTTP, HTTPS with
/// a certificate from this fixture's own CA (ECDSA P-256) naming every test name given, and raw TCP.
/// The Controller trusts the CA with <c>--egress-ca</c> <see cref="CaFile"/> and maps the names to
/// 127.0.0.1 with <c>--egress-resolve</c> (allowed with <c>--egress-allow-cidr 127.0.0.1/32</c>).
/// </summary>
public sealed class EgressUpstream : IAsyncDisposable
{
    private readonly Process _process;

    private EgressUpstream(string dir, Process process, int http, int https, int raw)
    {
        Dir = dir;
        _process = process;
        Http = http;
        Https = https;
        Raw = raw;
    }

    public string Dir { get; }

    public string CaFile => Path.Combine(Dir, "ca.pem");

    public int Http { get; }

    public int Https { get; }

    public int Raw { get; }

    /// <summary>Starts the servers; <paramref name="certificateNames"/> go into the leaf's SANs; requests carrying <c>Bearer <paramref name="secret"/></c> are reported as authorized.</summary>
    public static async Task<EgressUpstream> StartAsync(IEnumerable<string> certificateNames, string secret)
    {
        var dir = Directory.CreateTempSubdirectory("hive-upstream-").FullName;
        WriteCertificates(dir, certificateNames);
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Resources", "egress_upstream.py"), Path.Combine(dir, "leaf.pem"), Path.Combine(dir, "leaf.key"), secret })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        try
        {
            var ports = JsonDocument.Parse(await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)) ?? "{}").RootElement;
            return new EgressUpstream(dir, process, ports.GetProperty("http").GetInt32(), ports.GetProperty("https").GetInt32(), ports.GetProperty("raw").GetInt32());
        }
        catch
        {
            process.Kill();
            process.Dispose();
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>The CA and one leaf for every name (ECDSA P-256, server authentication).</summary>
    private static void WriteCertificates(string dir, IEnumerable<string> names)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=hive test upstream CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=hive test upstream", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            san.AddDnsName(name);
        }

        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var leaf = leafRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "leaf.pem"), leaf.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "leaf.key"), leafKey.ExportPkcs8PrivateKeyPem());
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(Dir, recursive: true);
    }
}
