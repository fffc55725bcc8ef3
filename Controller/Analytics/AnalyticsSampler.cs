using System.Globalization;
using System.Text.Json;
using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Sbxd;
using Hive.Controller.Sandboxes.Store;

namespace Hive.Controller.Analytics;

/// <summary>
/// Every <see cref="ControllerOptions.AnalyticsInterval"/>: host memory and CPU from /proc, each
/// running sandbox's usage from its Sbxd, stored for <c>GET /api/v1/analytics</c>.
/// </summary>
internal sealed partial class AnalyticsSampler(ControllerOptions options, AnalyticsStore analytics, SandboxStore store, SbxdClients clients, TimeProvider time, ILogger<AnalyticsSampler> logger) : BackgroundService
{
    private (ulong Busy, ulong Total)? _lastCpu;
    private readonly Dictionary<string, (ulong CpuNs, long At)> _lastSandboxCpu = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _lastCpu = ReadCpu();
        using var timer = new PeriodicTimer(options.AnalyticsInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await SampleAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSampleFailed(logger, ex.Message);
            }
        }
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var sandboxes = new List<Dictionary<string, object?>>();
        var records = store.List();
        foreach (var record in records)
        {
            if (record.Status != "running")
            {
                continue;
            }

            try
            {
                var status = await clients.GetStatusAsync(record.Name, TimeSpan.FromSeconds(2), cancellationToken);
                var at = Environment.TickCount64;
                double cpu = 0;
                if (_lastSandboxCpu.TryGetValue(record.Name, out var last) && at > last.At && status.CpuUsageNs >= last.CpuNs)
                {
                    cpu = (status.CpuUsageNs - last.CpuNs) / 1e6 / (at - last.At) * 100;
                }

                _lastSandboxCpu[record.Name] = (status.CpuUsageNs, at);
                var entry = new Dictionary<string, object?>
                {
                    ["id"] = record.Name,
                    ["status"] = record.Status,
                    ["cpu_percent"] = Math.Round(cpu, 2),
                    ["memory_usage"] = status.MemoryUsageBytes,
                    ["memory_limit"] = record.Config.MemoryBytes,
                    ["pids"] = status.PidsCurrent,
                    ["commands_executed"] = status.CommandsExecuted,
                };
                if (status.DiskLimitBytes > 0)
                {
                    // The writable layer's own file system: bytes and inodes in use against its disk.
                    entry["disk_usage"] = status.DiskUsedBytes;
                    entry["disk_limit"] = status.DiskLimitBytes;
                    entry["disk_inodes_usage"] = status.DiskUsedInodes;
                    entry["disk_inodes_limit"] = status.DiskLimitInodes;
                }

                if (status.Workspaces.Count > 0)
                {
                    entry["workspaces"] = status.Workspaces.Select(w => new Dictionary<string, object?>
                    {
                        ["mount"] = w.Mount,
                        ["disk_usage"] = w.Bytes,
                        ["disk_limit"] = w.LimitBytes,
                        ["disk_inodes_usage"] = w.Inodes,
                        ["disk_inodes_limit"] = w.LimitInodes,
                    }).ToList();
                }

                sandboxes.Add(entry);
            }
            catch (Exception ex) when (ex is Hive.Wire.RpcException or IOException)
            {
                sandboxes.Add(new Dictionary<string, object?> { ["id"] = record.Name, ["status"] = "unreachable" });
            }
        }

        var (memTotal, memUsed) = ReadMemory();
        var cpuNow = ReadCpu();
        double hostCpu = 0;
        if (_lastCpu is { } prev && cpuNow is { } cur && cur.Total > prev.Total)
        {
            hostCpu = (double)(cur.Busy - prev.Busy) / (cur.Total - prev.Total) * 100;
        }

        _lastCpu = cpuNow;
        var sample = new Dictionary<string, object?>
        {
            ["timestamp"] = now.ToUnixTimeSeconds(),
            ["sandbox_count"] = records.Count,
            ["sandboxes"] = sandboxes,
            ["host_memory_total"] = memTotal,
            ["host_memory_used"] = memUsed,
            ["host_cpu_percent"] = Math.Round(hostCpu, 2),
        };
        analytics.Add(now.ToUnixTimeSeconds(), JsonSerializer.Serialize(sample), (now - options.AnalyticsRetention).ToUnixTimeSeconds());
    }

    private static (long Total, long Used) ReadMemory()
    {
        long total = 0, available = 0;
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                total = Kb(line);
            }
            else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
            {
                available = Kb(line);
            }
        }

        return (total, total - available);

        static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>Aggregate busy and total jiffies from the first line of /proc/stat.</summary>
    private static (ulong Busy, ulong Total)? ReadCpu()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(f => ulong.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            var total = fields.Aggregate(0UL, (a, b) => a + b);
            var idle = fields[3] + (fields.Length > 4 ? fields[4] : 0);
            return (total - idle, total);
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Warning, Message = "Analytics sample failed: {Reason}")]
    private static partial void LogSampleFailed(ILogger logger, string reason);
}
