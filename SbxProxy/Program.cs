using System.Net;
using System.Runtime.InteropServices;
using Hive.Policy.Net;
using Hive.SbxProxy;
using Hive.SbxProxy.Audit;
using Hive.SbxProxy.Control;
using Hive.SbxProxy.Dns;
using Hive.SbxProxy.Tcp;
using Hive.SbxProxy.Tls;

// hive-sbxproxy: one sandbox's egress. Sbxd's iptables send every TCP connection and DNS query
// of the sandbox here; the proxy decides, forwards and records.
//   hive-sbxproxy --config proxy.json [--control SOCKET] [--pid-file FILE]
//   hive-sbxproxy --init-ca DIR NAME     create the sandbox's CA (ca.key 0600, ca.crt) unless it exists
string? configFile = null, control = null, pidFile = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--bench-mint" when i + 1 < args.Length:
            // bench/proxy: what one leaf certificate costs to mint (ECDSA P-256, signed by a fresh CA).
            var dir = Directory.CreateTempSubdirectory("hive-mint-").FullName;
            try
            {
                CertificateAuthority.Init(dir, "bench");
                using var authority = CertificateAuthority.Load(dir);
                authority.Mint("warm-up.test");
                var count = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
                var watch = System.Diagnostics.Stopwatch.StartNew();
                for (var n = 0; n < count; n++)
                {
                    authority.Mint($"h{n}.bench.test");
                }

                Console.WriteLine((watch.Elapsed.TotalMilliseconds / count).ToString("F3", System.Globalization.CultureInfo.InvariantCulture));
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }

            return 0;
        case "--init-ca" when i + 2 < args.Length:
            CertificateAuthority.Init(args[i + 1], args[i + 2]);
            return 0;
        case "--config" when i + 1 < args.Length:
            configFile = args[++i];
            break;
        case "--control" when i + 1 < args.Length:
            control = args[++i];
            break;
        case "--pid-file" when i + 1 < args.Length:
            pidFile = args[++i];
            break;
        default:
            Console.Error.WriteLine($"hive-sbxproxy: unexpected argument '{args[i]}'\nusage: hive-sbxproxy --config FILE [--control SOCKET] [--pid-file FILE] | --init-ca DIR NAME");
            return 2;
    }
}

if (configFile is null)
{
    Console.Error.WriteLine("usage: hive-sbxproxy --config FILE [--control SOCKET] [--pid-file FILE] | --init-ca DIR NAME");
    return 2;
}

ProxyConfig config;
EgressPolicy policy;
UpstreamAddressPolicy addresses;
try
{
    config = ProxyConfig.Load(configFile);
    policy = ProxyState.ParsePolicy(config.Egress);
    addresses = ProxyState.AddressPolicy(config, new HostAddresses(TimeProvider.System));
}
catch (Exception ex) when (ex is IOException or System.Text.Json.JsonException or EgressPolicyException or InvalidDataException)
{
    Console.Error.WriteLine("hive-sbxproxy: " + ex.Message);
    return 2;
}

var secrets = new Secrets(config.SecretsDir);
using var audit = new NetAudit(config.SpoolDir, () => secrets.KnownValues);
using var ca = CertificateAuthority.Load(config.CaDir);
var state = new ProxyState(config, policy, audit, secrets, ca, new Upstream(config, addresses));
using var stop = new CancellationTokenSource();
new DnsServer(state, new IPEndPoint(config.Listen, config.DnsPort)).Start(stop.Token);
new Interceptor(state, new IPEndPoint(config.Listen, config.TcpPort)).Start(stop.Token);
await using var controlServer = new ControlServer(state);
if (control is not null)
{
    File.Delete(control);
    await controlServer.StartAsync(control);
}

using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
Console.Error.WriteLine($"hive-sbxproxy: {config.Sandbox}: tcp {config.ListenAddress}:{config.TcpPort}, dns {config.ListenAddress}:{config.DnsPort}, {(policy.AllowAll ? "every host allowed" : $"{policy.Allow.Count} allow / {policy.Deny.Count} deny rules")}");
if (pidFile is not null)
{
    File.WriteAllText(pidFile, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

return 0;
