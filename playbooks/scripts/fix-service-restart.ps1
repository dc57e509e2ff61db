# fleet-script: fix.service_restart
# fleet-version: 1
# Restarts TermService so RDP-Tcp security values written before it are live: Windows reads
# them when the service starts (Microsoft's RDP troubleshooting restarts the machine after
# changing them: learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/
# troubleshoot-rdp-intermittent-connectivity). Disruptive: active sessions drop to Disconnected.
# The stop and the start are one Restart-Service call (-Force: UmRdpService depends on it), and
# a `finally` starts TermService, and the dependents that were running, if a stop of the
# pipeline (Ctrl-C, a cancelled run) landed in between: RDP is never left down. Not a no-op
# when run twice (each run restarts), but the state it leaves is the same: Running, with the
# configured values live.
#   Restart-Service: MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Management/Restart-Service.md
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
if ($name -ne 'TermService') { throw "fix.service_restart only restarts TermService, not '$name'" }

function Restore-Running([string]$Service) {
    # A service caught mid-stop cannot be started yet: wait (bounded) for Stopped first. The
    # wait throws System.ServiceProcess.TimeoutException when it expires
    # (learn.microsoft.com/dotnet/api/system.serviceprocess.servicecontroller.waitforstatus):
    # Start-Service is tried anyway and says why it cannot start.
    $s = Get-Service -Name $Service
    if ($s.Status -eq 'StopPending') {
        try { $s.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60)) } catch { $null = $_ }
    }
    if ((Get-Service -Name $Service).Status -ne 'Running') { Start-Service -Name $Service }
}

$svc = Get-Service -Name $name
$before = [string]$svc.Status
$dependents = @($svc.DependentServices | Where-Object { $_.Status -eq 'Running' } | ForEach-Object { $_.Name })
$problems = @()
try {
    try { Restart-Service -Name $name -Force } catch { $problems += "restart: $($_.Exception.Message)" }
} finally {
    # Every service is brought back, each on its own (also when the pipeline is stopped): one
    # that fails leaves no later dependent down, and no error hides another.
    foreach ($service in @($name) + $dependents) {
        try { Restore-Running $service } catch { $problems += "${service} not running again: $($_.Exception.Message)" }
    }
}
if ($problems.Count -gt 0) { throw ($problems -join '; ') }
$after = [string](Get-Service -Name $name).Status
$change = @{ target = "service $name (restart)"; before = $before; after = "$after (restarted)"; changed = $true }
Write-Frame @{ changes = @($change) }
