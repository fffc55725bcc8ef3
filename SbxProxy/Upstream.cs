using System.Security.Authentication;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Hive.Policy.Net;

namespace Hive.SbxProxy;

/// <summary>
/// Connections the proxy makes on the sandbox's behalf: the name is resolved here (operator
/// overrides first, then the host's resolver), every address is checked by the
/// <see cref="UpstreamAddressPolicy"/> before anything is sent (another sandbox, private, link-local,
/// metadata and the host's own addresses are refused — whatever the name, operator mappings
/// included, unless the operator allowed the range), and TLS is verified against the host's trust
/// store plus the operator's extra CAs.
/// </summary>
internal sealed class Upstream(ProxyConfig config, UpstreamAddressPolicy addresses)
{
    private readonly X509Certificate2Collection _extraRoots = LoadRoots(config.UpstreamCaFile);

    public UpstreamAddressPolicy Addresses => addresses;

    private static X509Certificate2Collection LoadRoots(string file)
    {
        var roots = new X509Certificate2Collection();
        if (file.Length > 0)
        {
            roots.ImportFromPemFile(file);
        }

        return roots;
    }

    public async Task<(Socket Socket, IPEndPoint Remote)> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        IPAddress[] found;
        if (config.Resolve.TryGetValue(host, out var fixedAddress))
        {
            found = [IPAddress.Parse(fixedAddress)];
        }
        else
        {
            found = await System.Net.Dns.GetHostAddressesAsync(host, cancellationToken);
            if (found.Length == 0)
            {
                throw new UpstreamException($"{host} has no address");
            }
        }

        // One refused address refuses the name: a resolver that mixes a public address with an
        // inward one must not get a second chance on the next connection (DNS rebinding).
        foreach (var address in found)
        {
            if (addresses.Refusal(address) is { } reason)
            {
                throw new UpstreamRefusedException($"{host}: {reason}; refused before connecting");
            }
        }

        var ordered = found.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).ToArray();
        Exception? last = null;
        foreach (var address in ordered)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var remote = new IPEndPoint(address, port);
                await socket.ConnectAsync(remote, timeout.Token);
                return (socket, remote);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                last = ex;
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
            }
        }

        throw new UpstreamException($"cannot connect to {host}:{port}: {(last is OperationCanceledException ? "timed out" : last?.Message)}");
    }

    public async Task<SslStream> WrapTlsAsync(Stream stream, string host, CancellationToken cancellationToken)
    {
        var tls = new SslStream(stream, leaveInnerStreamOpen: false, Verify);
        try
        {
            await tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                },
                cancellationToken);
            return tls;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            await tls.DisposeAsync();
            throw new UpstreamException($"TLS with {host} failed: {ex.Message}");
        }
    }

    private bool Verify(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        // Only an untrusted chain can be rescued, by the operator's extra roots; a wrong name never.
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || _extraRoots.Count == 0 || certificate is null)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var cert = new X509Certificate2(certificate);
        return custom.Build(cert);
    }
}

/// <summary>The upstream could not be reached (resolution, connect, TLS): a 502 to the agent.</summary>
internal class UpstreamException(string message) : Exception(message);

/// <summary>The upstream address is one the proxy never connects to: a refusal (deny event), nothing was sent.</summary>
internal sealed class UpstreamRefusedException(string message) : UpstreamException(message);
