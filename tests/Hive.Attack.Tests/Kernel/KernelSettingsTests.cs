namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Writing the host kernel's settings from inside: <c>core_pattern</c> (a "|program" there runs
/// as root on the host at the next crash — a classic escape), memory and KSM tunables, RCU.
/// Each attempt writes back the value it read, so even a kernel that took it would not change.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class KernelSettingsTests
{
    [TestCase("/proc/sys/kernel/core_pattern")]
    [TestCase("/proc/sys/vm/overcommit_memory")]
    [TestCase("/proc/sys/kernel/pid_max")]
    [TestCase("/sys/kernel/mm/ksm/run")]
    [TestCase("/sys/kernel/rcu_expedited")]
    [Defence("/proc/sys is bound read-only and /sys is mounted read-only")]
    public async Task Host_kernel_setting_cannot_be_written(string path)
    {
        Assert.That(KernelSandboxes.ReadOnHost(path), Is.Not.Empty, "the setting exists on this host");
        var outcome = await KernelSandboxes.PythonAsync(KernelSandboxes.Plain, $"p = '{path}'\nprint(try_write(p, open(p).read()))");
        Assert.That(outcome, Is.EqualTo("EROFS"), path);
    }
}
