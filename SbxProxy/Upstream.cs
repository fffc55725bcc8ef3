using System.Security.Authentication;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace Hive.SbxProxy;

/// <summary>
/// Connections the proxy makes on the sandbox's behalf: the name is resolved here (operator
/// overrides first, then the host's resolver), TLS is verified against the host's trust store plus
/// the operator's extra CAs. A name resolving to the host itself (loopback, link-local, the
/// sandbox networks, unspecified, multicast) is refused unless the operator mapped it explicitly —
/// otherwise any public name pointing at 127.0.0.1 would reach host services.
/// </summary>
internal sealed class Upstream(ProxyConfig config)
{
    private readonly X509Certificate2Collection _extraRoots = LoadRoots(config.UpstreamCaFile);

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
        IPAddress[] addresses;
        if (config.Resolve.TryGetValue(host, out var fixedAddress))
        {
            addresses = [IPAddress.Parse(fixedAddress)];
        }
        else
        {
            addresses = (await System.Net.Dns.GetHostAddressesAsync(host, cancellationToken))
                .OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1)
                .ToArray();
            if (addresses.Length == 0)
            {
                throw new UpstreamException($"{host} has no address");
            }

            var forbidden = addresses.FirstOrDefault(IsHostInternal);
            if (forbidden is not null)
            {
                throw new UpstreamException($"{host} resolves to {forbidden}, an address of the host itself; refused");
            }
        }

        Exception? last = null;
        foreach (var address in addresses)
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

    private static bool IsHostInternal(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.IsIPv6LinkLocal || address.IsIPv6Multicast)
        {
            return true;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            if (b[0] == 0 || (b[0] == 169 && b[1] == 254) || b[0] >= 224)
            {
                return true;
            }
        }

        try
        {
            return System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Any(u => u.Address.Equals(address));
        }
        catch (System.Net.NetworkInformation.NetworkInformationException)
        {
            return true;
        }
    }
}

internal sealed class UpstreamException(string message) : Exception(message);
