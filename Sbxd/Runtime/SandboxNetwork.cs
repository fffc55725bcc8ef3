using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hive.Interop;
using Hive.Protos.V1;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Network <c>isolated</c>/<c>shared</c>: the sandbox's netns gets a veth pair with a routed /30 from
/// the pool (lease file per sandbox: survives restarts, released on destroy), IPv6 off, and host
/// iptables rules on the host end that send every TCP connection to SbxProxy, DNS (UDP and TCP 53)
/// to its resolver, and drop everything else (other UDP, ICMP, forwarding, host ports). SbxProxy
/// is started and supervised here; its CA key stays in the host-only state dir, the certificate
/// goes into the container's trust store.
/// </summary>
internal sealed partial class SandboxNetwork(SandboxLayout layout, ILogger logger)
{
    public const int ProxyPort = 15001;
    public const int DnsPort = 15053;
    public const string DefaultPool = "10.213.0.0/16";
    public const string DefaultSyntheticPool = "10.214.0.0/16";
    private const string ContainerCaFile = "/usr/local/share/ca-certificates/hive-sandbox-ca.crt";
    private const string ContainerBundle = "/etc/ssl/certs/ca-certificates.crt";

    public bool Enabled => layout.Spec.Network is NetworkMode.Isolated or NetworkMode.Shared;

    private string NetDir => Path.Combine(layout.StateDir, "net");

    private string CaDir => Path.Combine(NetDir, "ca");

    private string ConfigFile => Path.Combine(NetDir, "proxy.json");

    private string PidFile => Path.Combine(NetDir, "sbxproxy.pid");

    private string ControlSocket => Path.Combine(NetDir, "sbxproxy.sock");

    private string LogFile => Path.Combine(NetDir, "sbxproxy.log");

    // The container's resolver and trust store live on the sandbox's binds tmpfs (see SandboxLayout.BindsDir).
    private string ResolvConf => Path.Combine(layout.BindsDir, "resolv.conf");

    private string Bundle => Path.Combine(layout.BindsDir, "ca-bundle.crt");

    private string ContainerCa => Path.Combine(layout.BindsDir, "ca.crt");

    private string CaCert => Path.Combine(CaDir, "ca.crt");

    private string LeasesDir => layout.Spec.NetLeasesDir;

    private string Pool => layout.Spec.NetPool.Length > 0 ? layout.Spec.NetPool : DefaultPool;

    public NetLease? Lease { get; private set; }

    /// <summary>The sandbox's address (the response's network.ip), or empty.</summary>
    public string SandboxIp => Lease?.SandboxIp.ToString() ?? string.Empty;

    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        Directory.CreateDirectory(NetDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Lease = AcquireLease();
        await EnsureLinkAsync(Lease, cancellationToken);
        await EnsureFirewallAsync(Lease, cancellationToken);
        await EnsureTrustAsync(cancellationToken);
        await File.WriteAllTextAsync(ResolvConf, $"# Hive: every query is answered (and recorded) by the sandbox's egress proxy\nnameserver {Lease.HostIp}\noptions timeout:2 attempts:2\n", cancellationToken);
        await EnsureProxyAsync(cancellationToken);
    }

    /// <summary>Files bound read-only into the container: resolver and trust store.</summary>
    public IEnumerable<(string Destination, string Source)> ContainerFiles() => Enabled
        ? [("/etc/resolv.conf", ResolvConf), (ContainerBundle, Bundle), (ContainerCaFile, ContainerCa)]
        : [];

    /// <summary>Environment that makes common clients trust the sandbox's CA without flags.</summary>
    public IEnumerable<string> ContainerEnvironment() => Enabled
        ? ["SSL_CERT_FILE=" + ContainerBundle, "REQUESTS_CA_BUNDLE=" + ContainerBundle, "CURL_CA_BUNDLE=" + ContainerBundle, "NODE_EXTRA_CA_CERTS=" + ContainerCaFile, "PIP_CERT=" + ContainerBundle]
        : [];

    // ---- leases ----

    /// <summary>
    /// A /30 and the host-side names derived from it. <paramref name="Tag"/> (from the leases dir) keeps
    /// the names of two Controllers on one host apart (interface names are at most 15 characters).
    /// </summary>
    internal sealed record NetLease(int Index, string Tag, IPAddress HostIp, IPAddress SandboxIp)
    {
        private string Id => Tag + Index.ToString(System.Globalization.CultureInfo.InvariantCulture);

        public string HostLink => "hv" + Id;

        public string NatChain => "HIVE-N" + Id;

        public string FilterChain => "HIVE-I" + Id;

        public string OutputChain => "HIVE-O" + Id;
    }

    private string Tag => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(LeasesDir))))[..4];

    /// <summary>Every lease file: its index and the sandbox it belongs to (null when unreadable).</summary>
    private IEnumerable<(int Index, string File, string? Name)> ReadLeases()
    {
        foreach (var file in Directory.EnumerateFiles(LeasesDir))
        {
            if (!int.TryParse(Path.GetFileName(file), System.Globalization.CultureInfo.InvariantCulture, out var index))
            {
                continue;
            }

            string? name;
            try
            {
                name = JsonNode.Parse(File.ReadAllText(file))?["name"]?.GetValue<string>();
            }
            catch (Exception ex) when (ex is JsonException or IOException)
            {
                name = null;
            }

            yield return (index, file, name);
        }
    }

    private NetLease AcquireLease()
    {
        var (network, count) = ParsePool(Pool);
        Directory.CreateDirectory(LeasesDir);
        // One Sbxd at a time picks a free index (flock through FileShare.None).
        using var gate = OpenLock(Path.Combine(LeasesDir, ".lock"));
        var used = new HashSet<int>();
        foreach (var (index, file, owner) in ReadLeases())
        {
            used.Add(index);
            if (owner == layout.Name)
            {
                WriteLease(file, index, network);
                return Make(index, network);
            }
        }

        for (var index = 0; index < count; index++)
        {
            if (!used.Contains(index))
            {
                WriteLease(Path.Combine(LeasesDir, index.ToString(System.Globalization.CultureInfo.InvariantCulture)), index, network);
                return Make(index, network);
            }
        }

        throw new InvalidOperationException($"the network pool {layout.Spec.NetPool} has no free /30 left ({count} sandboxes use it)");
    }

    private void WriteLease(string file, int index, uint network)
    {
        var lease = Make(index, network);
        var shared = layout.Spec.Network == NetworkMode.Shared;
        var expose = new JsonArray();
        foreach (var port in shared ? layout.Spec.Expose : [])
        {
            expose.Add((int)port);
        }

        // Peers' proxies read "group" and "expose" from here: a member is reached only on these ports.
        var json = new JsonObject { ["name"] = layout.Name, ["group"] = shared ? layout.Spec.NetworkGroup : string.Empty, ["ip"] = lease.SandboxIp.ToString(), ["expose"] = expose };
        File.WriteAllText(file + ".tmp", json.ToJsonString());
        File.Move(file + ".tmp", file, overwrite: true);
    }

    private NetLease Make(int index, uint network)
    {
        static IPAddress At(uint value)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
            return new IPAddress(bytes);
        }

        var subnet = network + ((uint)index * 4);
        return new NetLease(index, Tag, At(subnet + 1), At(subnet + 2));
    }

    internal static (uint Network, int Count) ParsePool(string cidr)
    {
        var parts = cidr.Split('/');
        if (parts.Length != 2 || !IPAddress.TryParse(parts[0], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork ||
            !int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var prefix) || prefix is < 8 or > 30)
        {
            throw new InvalidOperationException($"network pool '{cidr}' must be an IPv4 CIDR between /8 and /30");
        }

        var size = 1u << (32 - prefix);
        var network = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes()) & ~(size - 1);
        return (network, (int)Math.Min(size / 4, 99_999));
    }

    private static FileStream OpenLock(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 500)
            {
                Thread.Sleep(10);
            }
        }
    }

    private void ReleaseLease()
    {
        if (LeasesDir.Length == 0 || !Directory.Exists(LeasesDir))
        {
            return;
        }

        using var gate = OpenLock(Path.Combine(LeasesDir, ".lock"));
        foreach (var (_, file, owner) in ReadLeases().ToList())
        {
            if (owner == layout.Name)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>The lease this sandbox holds, without taking one (teardown of a sandbox whose Sbxd died).</summary>
    private NetLease? FindLease()
    {
        if (LeasesDir.Length == 0 || !Directory.Exists(LeasesDir))
        {
            return null;
        }

        var (network, _) = ParsePool(Pool);
        var own = ReadLeases().FirstOrDefault(l => l.Name == layout.Name);
        return own.Name is null ? null : Make(own.Index, network);
    }

    // ---- link ----

    private async Task EnsureLinkAsync(NetLease lease, CancellationToken cancellationToken)
    {
        var ns = layout.NetnsName;
        var hostUp = Directory.Exists("/sys/class/net/" + lease.HostLink);
        var inside = await Command.RunAsync("ip", ["-n", ns, "-o", "addr", "show", "dev", "eth0"], cancellationToken);
        if (hostUp && inside.Ok && inside.Stdout.Contains(lease.SandboxIp + "/30", StringComparison.Ordinal))
        {
            LogAdopted(logger, lease.HostLink);
            return;
        }

        if (hostUp)
        {
            await Command.RunAsync("ip", ["link", "del", lease.HostLink], cancellationToken);
        }

        if (inside.Ok)
        {
            await Command.RunAsync("ip", ["-n", ns, "link", "del", "eth0"], cancellationToken);
        }

        await Command.RequireAsync("ip", ["link", "add", lease.HostLink, "type", "veth", "peer", "name", "eth0", "netns", ns], "ip link add veth", cancellationToken);
        await File.WriteAllTextAsync($"/proc/sys/net/ipv6/conf/{lease.HostLink}/disable_ipv6", "1", cancellationToken);
        await Command.RequireAsync("ip", ["addr", "add", lease.HostIp + "/30", "dev", lease.HostLink], "ip addr add (host)", cancellationToken);
        await Command.RequireAsync("ip", ["link", "set", lease.HostLink, "up"], "ip link set up (host)", cancellationToken);
        // IPv6 off inside: no addresses, no router solicitations, nothing to bypass the IPv4 rules with.
        await Command.RequireAsync("ip", ["netns", "exec", ns, "/bin/sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"], "disable IPv6 in the sandbox", cancellationToken);
        await Command.RequireAsync("ip", ["-n", ns, "addr", "add", lease.SandboxIp + "/30", "dev", "eth0"], "ip addr add (sandbox)", cancellationToken);
        await Command.RequireAsync("ip", ["-n", ns, "link", "set", "eth0", "up"], "ip link set up (sandbox)", cancellationToken);
        await Command.RequireAsync("ip", ["-n", ns, "route", "add", "default", "via", lease.HostIp.ToString()], "ip route add default", cancellationToken);
        LogLink(logger, lease.HostLink, lease.SandboxIp.ToString());
    }

    // ---- firewall ----

    private static Task<Command.Result> IptablesAsync(CancellationToken cancellationToken, params string[] args) =>
        Command.RunAsync("iptables", ["-w", "5", .. args], cancellationToken);

    /// <summary>
    /// Installs (or replaces) the sandbox's chains in one <c>iptables-restore --noflush</c> transaction, so a
    /// restarted Sbxd never leaves a moment in which the sandbox's traffic is not redirected or filtered.
    /// </summary>
    private async Task EnsureFirewallAsync(NetLease lease, CancellationToken cancellationToken)
    {
        var link = lease.HostLink;
        var host = lease.HostIp.ToString();
        var dns = DnsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var proxy = ProxyPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        async Task<string> JumpIfMissing(string[] table, string chain, string rule) =>
            (await IptablesAsync(cancellationToken, [.. table, "-C", chain, .. rule.Split(' ')])).Ok ? string.Empty : $"-I {chain} 1 {rule}\n";

        // nat: DNS to the resolver, every other TCP connection to the proxy (original destination kept for SO_ORIGINAL_DST).
        // filter: from the sandbox only the proxy and the resolver on the host end, and replies to
        // connections the host made (the proxy reaching a shared-group peer); nothing else, no forwarding.
        // Toward the sandbox (OUTPUT on its link): replies, and new connections only to the ports it
        // exposes to its group — so no process on the host reaches the sandbox's other servers
        // directly either; peers come through their proxy, ingress through the agent's socket.
        var exposed = string.Concat((layout.Spec.Network == NetworkMode.Shared ? layout.Spec.Expose : []).Select(p => $"-A {lease.OutputChain} -p tcp --dport {p} -j ACCEPT\n"));
        var rules = $"""
            *nat
            :{lease.NatChain} - [0:0]
            -A {lease.NatChain} -p udp --dport 53 -j REDIRECT --to-ports {dns}
            -A {lease.NatChain} -p tcp --dport 53 -j REDIRECT --to-ports {dns}
            -A {lease.NatChain} -p tcp -j REDIRECT --to-ports {proxy}
            {await JumpIfMissing(["-t", "nat"], "PREROUTING", $"-i {link} -j {lease.NatChain}")}COMMIT
            *filter
            :{lease.FilterChain} - [0:0]
            -A {lease.FilterChain} -d {host}/32 -p tcp --dport {proxy} -j ACCEPT
            -A {lease.FilterChain} -d {host}/32 -p udp --dport {dns} -j ACCEPT
            -A {lease.FilterChain} -d {host}/32 -p tcp --dport {dns} -j ACCEPT
            -A {lease.FilterChain} -m conntrack --ctstate ESTABLISHED -j ACCEPT
            -A {lease.FilterChain} -j DROP
            :{lease.OutputChain} - [0:0]
            -A {lease.OutputChain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
            {exposed}-A {lease.OutputChain} -p tcp -j REJECT --reject-with tcp-reset
            -A {lease.OutputChain} -j DROP
            {await JumpIfMissing([], "OUTPUT", $"-o {link} -j {lease.OutputChain}")}{await JumpIfMissing([], "INPUT", $"-i {link} -j {lease.FilterChain}")}{await JumpIfMissing([], "FORWARD", $"-i {link} -j DROP")}{await JumpIfMissing([], "FORWARD", $"-o {link} -j DROP")}COMMIT

            """;
        var file = Path.Combine(NetDir, "iptables.rules");
        await File.WriteAllTextAsync(file, rules.Replace("\n\n", "\n", StringComparison.Ordinal), cancellationToken);
        var restore = await Command.RunAsync("iptables-restore", ["-w", "5", "--noflush", file], cancellationToken);
        if (!restore.Ok)
        {
            throw new InvalidOperationException(restore.Describe("iptables-restore (sandbox firewall)"));
        }
    }

    private async Task RemoveFirewallAsync(NetLease lease, List<string> problems, CancellationToken cancellationToken)
    {
        async Task DeleteAll(string[] table, string chain, string[] rule)
        {
            for (var i = 0; i < 16 && (await IptablesAsync(cancellationToken, [.. table, "-C", chain, .. rule])).Ok; i++)
            {
                await IptablesAsync(cancellationToken, [.. table, "-D", chain, .. rule]);
            }
        }

        await DeleteAll(["-t", "nat"], "PREROUTING", ["-i", lease.HostLink, "-j", lease.NatChain]);
        await DeleteAll([], "INPUT", ["-i", lease.HostLink, "-j", lease.FilterChain]);
        await DeleteAll([], "OUTPUT", ["-o", lease.HostLink, "-j", lease.OutputChain]);
        await DeleteAll([], "FORWARD", ["-i", lease.HostLink, "-j", "DROP"]);
        await DeleteAll([], "FORWARD", ["-o", lease.HostLink, "-j", "DROP"]);
        foreach (var (table, chain) in new[] { (new[] { "-t", "nat" }, lease.NatChain), (Array.Empty<string>(), lease.FilterChain), (Array.Empty<string>(), lease.OutputChain) })
        {
            if ((await IptablesAsync(cancellationToken, [.. table, "-L", chain, "-n"])).Ok)
            {
                await IptablesAsync(cancellationToken, [.. table, "-F", chain]);
                var delete = await IptablesAsync(cancellationToken, [.. table, "-X", chain]);
                if (!delete.Ok)
                {
                    problems.Add(delete.Describe("iptables -X " + chain));
                }
            }
        }
    }

    // ---- trust ----

    private async Task EnsureTrustAsync(CancellationToken cancellationToken)
    {
        await Command.RequireAsync(layout.Spec.SbxproxyPath, ["--init-ca", CaDir, layout.Name], "creating the sandbox CA", cancellationToken);
        // The image's own bundle (trusted: the image's lower dir, not the sandbox's upper layer) plus our CA.
        var imageBundle = Path.Combine(layout.Spec.ImageRootfs, "etc/ssl/certs/ca-certificates.crt");
        var existing = File.Exists(imageBundle) ? await File.ReadAllTextAsync(imageBundle, cancellationToken) : string.Empty;
        var ca = await File.ReadAllTextAsync(CaCert, cancellationToken);
        await File.WriteAllTextAsync(Bundle + ".tmp", existing.TrimEnd() + (existing.Length > 0 ? "\n" : string.Empty) + ca, cancellationToken);
        File.Move(Bundle + ".tmp", Bundle, overwrite: true);
        File.Copy(CaCert, ContainerCa, overwrite: true);
    }

    // ---- proxy ----

    private void WriteProxyConfig()
    {
        var resolve = new JsonObject();
        foreach (var (name, address) in layout.Spec.EgressResolve)
        {
            resolve[name] = address;
        }

        var config = new JsonObject
        {
            ["sandbox"] = layout.Name,
            ["listen_address"] = Lease!.HostIp.ToString(),
            ["tcp_port"] = ProxyPort,
            ["dns_port"] = DnsPort,
            ["egress"] = layout.Spec.EgressJson,
            ["ca_dir"] = CaDir,
            ["spool_dir"] = layout.SpoolDir,
            ["secrets_dir"] = layout.Spec.SecretsDir,
            ["resolve"] = resolve,
            ["upstream_ca_file"] = layout.Spec.UpstreamCaFile,
            ["synthetic_pool"] = layout.Spec.SyntheticPool.Length > 0 ? layout.Spec.SyntheticPool : DefaultSyntheticPool,
            ["net_pool"] = Pool,
            ["allow_cidrs"] = new JsonArray([.. layout.Spec.EgressAllowCidrs.Select(c => (JsonNode?)JsonValue.Create(c))]),
            ["names_file"] = Path.Combine(NetDir, "names"),
            ["group"] = layout.Spec.Network == NetworkMode.Shared ? layout.Spec.NetworkGroup : string.Empty,
            ["leases_dir"] = LeasesDir,
        };
        File.WriteAllText(ConfigFile + ".tmp", config.ToJsonString());
        File.Move(ConfigFile + ".tmp", ConfigFile, overwrite: true);
    }

    /// <summary>SbxProxy is alive (its pid file names a live hive-sbxproxy).</summary>
    public bool ProxyServing() =>
        File.Exists(PidFile) && int.TryParse(File.ReadAllText(PidFile).Trim(), out var pid) && ProcFs.IsAlive(pid) && File.Exists(ControlSocket);

    public bool ProxyDown() => Enabled && Lease is not null && !ProxyServing();

    public async Task EnsureProxyAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        if (ProxyServing())
        {
            LogAdoptedProxy(logger);
            return;
        }

        WriteProxyConfig();
        File.Delete(PidFile);
        File.Delete(ControlSocket);
        var start = await Command.RunAsync(
            "/bin/sh",
            ["-c", "exec setsid -f \"$0\" --config \"$1\" --control \"$2\" --pid-file \"$3\" >>\"$4\" 2>&1 </dev/null", layout.Spec.SbxproxyPath, ConfigFile, ControlSocket, PidFile, LogFile],
            cancellationToken);
        if (!start.Ok)
        {
            throw new InvalidOperationException(start.Describe("starting hive-sbxproxy"));
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!ProxyServing())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("hive-sbxproxy did not start: " + LogTail.Of(LogFile));
            }

            await Task.Delay(10, cancellationToken);
        }

        LogProxy(logger, Lease!.HostIp.ToString());
    }

    /// <summary>New egress rules: into the spec (restarts keep them), the proxy's config, and the live proxy.</summary>
    public async Task<bool> SetPolicyAsync(string egressJson, CancellationToken cancellationToken)
    {
        layout.Spec.EgressJson = egressJson;
        var temp = layout.SpecFile + ".new";
        await File.WriteAllBytesAsync(temp, Google.Protobuf.MessageExtensions.ToByteArray(layout.Spec), cancellationToken);
        File.Move(temp, layout.SpecFile, overwrite: true);
        if (!Enabled || Lease is null)
        {
            return false;
        }

        WriteProxyConfig();
        if (!ProxyServing())
        {
            return false;
        }

        using var control = Hive.Wire.GrpcChannel.ForUnixSocket(ControlSocket);
        await control.UnaryAsync<SetPolicyRequest, SetPolicyResponse>(
            "/hive.v1.NetControl/SetPolicy", new SetPolicyRequest { EgressJson = egressJson }, new Hive.Wire.CallOptions(TimeSpan.FromSeconds(10), cancellationToken));
        return true;
    }

    private void StopProxy()
    {
        if (File.Exists(PidFile) && int.TryParse(File.ReadAllText(PidFile).Trim(), out var pid) && ProcFs.IsAlive(pid))
        {
            Libc.kill(pid, Libc.SIGTERM);
            for (var wait = 0; wait < 100 && ProcFs.IsAlive(pid); wait++)
            {
                Thread.Sleep(20);
            }

            if (ProcFs.IsAlive(pid))
            {
                Libc.kill(pid, Libc.SIGKILL);
            }
        }
    }

    /// <summary>Destroy: proxy, firewall rules, link, lease. Problems are collected, not thrown.</summary>
    public async Task TearDownAsync(List<string> problems, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        StopProxy();
        var lease = Lease ?? FindLease();
        if (lease is null)
        {
            return;
        }

        await RemoveFirewallAsync(lease, problems, cancellationToken);
        if (Directory.Exists("/sys/class/net/" + lease.HostLink))
        {
            var delete = await Command.RunAsync("ip", ["link", "del", lease.HostLink], cancellationToken);
            if (!delete.Ok && Directory.Exists("/sys/class/net/" + lease.HostLink))
            {
                problems.Add(delete.Describe("ip link del " + lease.HostLink));
            }
        }

        ReleaseLease();
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "Network link {Link} up, sandbox address {Address}")]
    private static partial void LogLink(ILogger logger, string link, string address);

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "Adopted network link {Link}")]
    private static partial void LogAdopted(ILogger logger, string link);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "SbxProxy serving on {Address}")]
    private static partial void LogProxy(ILogger logger, string address);

    [LoggerMessage(EventId = 43, Level = LogLevel.Information, Message = "Adopted running SbxProxy")]
    private static partial void LogAdoptedProxy(ILogger logger);
}
