using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Hive.SbxProxy.Tls;

/// <summary>
/// The sandbox's own CA (ECDSA P-256; the key never leaves the host-only state dir) and the leaf
/// certificates it mints per host name on first use (~1 ms, cached for the proxy's life). ECDSA
/// because an RSA leaf costs 100+ ms to generate.
/// </summary>
internal sealed class CertificateAuthority : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;
    private readonly ECDsa _leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ConcurrentDictionary<string, Lazy<SslStreamCertificateContext>> _leaves = new(StringComparer.Ordinal);

    private CertificateAuthority(X509Certificate2 ca, ECDsa caKey)
    {
        _ca = ca;
        _caKey = caKey;
    }

    public int Minted => _leaves.Count;

    public static string KeyFile(string dir) => Path.Combine(dir, "ca.key");

    public static string CertFile(string dir) => Path.Combine(dir, "ca.crt");

    /// <summary>Creates the CA in <paramref name="dir"/> unless it exists (key file mode 0600).</summary>
    public static void Init(string dir, string sandbox)
    {
        if (File.Exists(KeyFile(dir)) && File.Exists(CertFile(dir)))
        {
            return;
        }

        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=Hive sandbox {sandbox} CA, O=Hive", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(5));
        var keyTemp = KeyFile(dir) + ".tmp";
        File.WriteAllText(keyTemp, string.Empty);
        File.SetUnixFileMode(keyTemp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(keyTemp, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(CertFile(dir) + ".tmp", cert.ExportCertificatePem() + "\n");
        File.Move(CertFile(dir) + ".tmp", CertFile(dir), overwrite: true);
        File.Move(keyTemp, KeyFile(dir), overwrite: true);
    }

    public static CertificateAuthority Load(string dir)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(KeyFile(dir)));
        var cert = X509Certificate2.CreateFromPem(File.ReadAllText(CertFile(dir)));
        return new CertificateAuthority(cert, key);
    }

    /// <summary>The certificate (and chain context) presented to the sandbox for <paramref name="host"/>.</summary>
    public SslStreamCertificateContext ContextFor(string host) =>
        _leaves.GetOrAdd(host, h => new Lazy<SslStreamCertificateContext>(() => Mint(h))).Value;

    internal SslStreamCertificateContext Mint(string host)
    {
        var request = new CertificateRequest($"CN={host}", _leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(host);
        request.CertificateExtensions.Add(san.Build(true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        var now = DateTimeOffset.UtcNow;
        var generator = X509SignatureGenerator.CreateForECDsa(_caKey);
        using var signed = request.Create(_ca.SubjectName, generator, now.AddHours(-1), now.AddDays(30), serial);
        var leaf = signed.CopyWithPrivateKey(_leafKey);
        return SslStreamCertificateContext.Create(leaf, [_ca], offline: true);
    }

    public void Dispose()
    {
        _ca.Dispose();
        _caKey.Dispose();
        _leafKey.Dispose();
    }
}
