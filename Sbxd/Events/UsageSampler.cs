using Hive.Protos.V1;
using Hive.Sbxd.Runtime;
using Hive.Sbxd.Service;

namespace Hive.Sbxd.Events;

/// <summary><c>resource.usage</c> (cpu, memory, pids, disk) every few seconds from the sandbox's cgroups, and <c>lifecycle.oom</c> when the kernel OOM-kills inside it.</summary>
internal static class UsageSampler
{
    public static async Task RunAsync(SandboxLayout layout, SandboxRuntime runtime, SandboxService service, Func<Event, Task> record, CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromMilliseconds(layout.Spec.UsageIntervalMs == 0 ? 5000 : Math.Max(200, layout.Spec.UsageIntervalMs));
        var lastCpu = runtime.Cgroups.CpuUsageNs();
        var lastOom = runtime.Cgroups.OomKills();
        var lastAt = Environment.TickCount64;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (service.Destroying)
                {
                    return;
                }

                if (service.State != SandboxState.Running)
                {
                    continue;
                }

                var cpu = runtime.Cgroups.CpuUsageNs();
                var now = Environment.TickCount64;
                var oom = runtime.Cgroups.OomKills();
                var percent = now > lastAt && cpu >= lastCpu ? (cpu - lastCpu) / 1e6 / (now - lastAt) * 100 : 0;
                (lastCpu, lastAt) = (cpu, now);
                if (oom > lastOom)
                {
                    await record(EventIngest.Lifecycle("lifecycle.oom", $"the kernel OOM-killed {oom - lastOom} process(es) at the {layout.Spec.MemoryBytes}-byte memory limit", "container"));
                    lastOom = oom;
                }

                var usage = new ResourceUsageEvent
                {
                    CpuPercent = percent,
                    MemoryBytes = runtime.Cgroups.MemoryUsage(),
                    MemoryLimitBytes = layout.Spec.MemoryBytes,
                    Pids = runtime.Cgroups.PidsCurrent(),
                };
                if (runtime.Disk.Usage() is { } disk)
                {
                    (usage.DiskBytes, usage.DiskLimitBytes, usage.DiskInodes, usage.DiskLimitInodes) = disk;
                }

                usage.Workspaces.AddRange(runtime.Workspaces.DiskUsage());
                await record(new Event { Kind = "resource.usage", Resource = usage });
            }
        }
        catch (OperationCanceledException)
        {
            // Sbxd is stopping.
        }
    }
}
