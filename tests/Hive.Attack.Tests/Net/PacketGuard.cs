using System.Net;
using System.Net.Sockets;

namespace Hive.Attack.Tests.Net;

/// <summary>
/// Host firewall rules (own chain, first in OUTPUT) that reject — and count — every packet the host
/// would send to the given addresses. Attack tests point names at private, link-local or metadata
/// addresses; with the guard nothing can leave even if the defence under test were removed, and the
/// counters prove the proxy never tried. Removed on dispose.
/// </summary>
internal sealed class PacketGuard : IAsyncDisposable
{
    private readonly string _chain = "HVATK" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));
    private readonly List<IPAddress> _addresses;

    private PacketGuard(IEnumerable<IPAddress> addresses) => _addresses = addresses.Distinct().ToList();

    public static async Task<PacketGuard> InstallAsync(IEnumerable<IPAddress> addresses)
    {
        var guard = new PacketGuard(addresses);
        try
        {
            foreach (var (tool, family, bits) in Families)
            {
                await RequireAsync(tool, "-N", guard._chain);
                foreach (var address in guard._addresses.Where(a => a.AddressFamily == family))
                {
                    await RequireAsync(tool, "-A", guard._chain, "-d", $"{address}/{bits}", "-j", "REJECT");
                }

                await RequireAsync(tool, "-I", "OUTPUT", "1", "-j", guard._chain);
            }
        }
        catch
        {
            await guard.DisposeAsync();
            throw;
        }

        return guard;
    }

    private static readonly (string Tool, AddressFamily Family, int Bits)[] Families = [("iptables", AddressFamily.InterNetwork, 32), ("ip6tables", AddressFamily.InterNetworkV6, 128)];

    /// <summary>Packets the host tried to send to <paramref name="address"/> since the guard was installed.</summary>
    public async Task<long> PacketsToAsync(IPAddress address)
    {
        var tool = address.AddressFamily == AddressFamily.InterNetwork ? "iptables" : "ip6tables";
        var (code, output, error) = await Host.RunAsync(tool, "-w", "5", "-L", _chain, "-v", "-x", "-n");
        Assert.That(code, Is.EqualTo(0), error);
        foreach (var line in output.Split('\n').Skip(2))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 9 && IPAddress.TryParse(fields[8].Split('/')[0], out var destination) && destination.Equals(address))
            {
                return long.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new AssertionException($"no guard rule for {address} in {_chain}:\n{output}");
    }

    private static async Task RequireAsync(string tool, params string[] args)
    {
        var (code, _, error) = await Host.RunAsync(tool, ["-w", "5", .. args]);
        Assert.That(code, Is.EqualTo(0), $"{tool} {string.Join(' ', args)}: {error}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (tool, _, _) in Families)
        {
            for (var i = 0; i < 4 && (await Host.RunAsync(tool, "-w", "5", "-C", "OUTPUT", "-j", _chain)).ExitCode == 0; i++)
            {
                await Host.RunAsync(tool, "-w", "5", "-D", "OUTPUT", "-j", _chain);
            }

            await Host.RunAsync(tool, "-w", "5", "-F", _chain);
            await Host.RunAsync(tool, "-w", "5", "-X", _chain);
        }
    }
}
