# fleet-script: fix.service
# fleet-version: 3
# Brings one service to a start type and/or a status. Params: {"name", "start_type"?:
# Automatic | Manual | Disabled, "status"?: Running | Stopped}. Everything is validated before
# anything changes; then the start type (so Disabled -> Manual comes before a start), then
# Start-Service or Stop-Service, each only where it differs. Idempotent. Reports
# "Status (StartType)" before and after, with the start type names gather.ps1 reports.
# Stop-Service without -Force: a service that running services depend on is not stopped (the
# change fails) rather than taking its dependents down with it.
#   Set-Service -StartupType, Start-Service / Stop-Service -InputObject (no wildcards):
#   MicrosoftDocs/PowerShell-Docs reference/5.1/Microsoft.PowerShell.Management/
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
$wanted = [string]$p.start_type
$status = [string]$p.status
if (-not $name) { throw 'fix.service: a service name is required' }
if ($status -and @('Running', 'Stopped') -cnotcontains $status) {
    throw "fix.service: status must be Running or Stopped, not '$status'"
}
if ($wanted -and @('Automatic', 'Manual', 'Disabled') -cnotcontains $wanted) {
    throw "fix.service: start_type must be Automatic, Manual or Disabled, not '$wanted'"
}
if (-not $status -and -not $wanted) { throw 'fix.service: give status, start_type or both' }

function Get-StartType($service) {
    # ServiceController.StartType exists from .NET Framework 4.6.1 on; on stock Server 2012 R2
    # (.NET 4.5.1) it is empty (learn.microsoft.com/dotnet/api/system.serviceprocess.servicecontroller.starttype).
    # Then ask WMI, as gather.ps1 does: Win32_Service.StartMode says Auto where StartType says
    # Automatic; a delayed start is Automatic in both, and Win32_Service.DelayedAutoStart does
    # not exist before Server 2016 (learn.microsoft.com/windows/win32/cimwin32prov/win32-service).
    # Matched by name in PowerShell: the name never becomes WQL text.
    $type = [string]$service.StartType
    if ($type) { return $type }
    $wmi = @(Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $service.Name })
    if ($wmi.Count -eq 0) { throw "fix.service: Win32_Service has no service '$($service.Name)'" }
    $mode = [string]$wmi[0].StartMode
    if ($mode -eq 'Auto') { return 'Automatic' }
    return $mode
}

# Exactly this service: Get-Service -Name takes wildcards.
$svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($name))
$beforeType = Get-StartType $svc
$before = "$($svc.Status) ($beforeType)"
$type = $beforeType
if ($wanted) { $type = $wanted }
if ($status -eq 'Running' -and [string]$svc.Status -ne 'Running' -and $type -eq 'Disabled') {
    throw "fix.service: '$($svc.Name)' is Disabled and cannot be started"
}
if ($wanted -and ($beforeType -ne $wanted)) {
    Set-Service -Name $svc.Name -StartupType $wanted
}
if ($status -eq 'Running' -and [string]$svc.Status -ne 'Running') { Start-Service -InputObject $svc }
if ($status -eq 'Stopped' -and [string]$svc.Status -ne 'Stopped') { Stop-Service -InputObject $svc }
$svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($svc.Name))
$after = "$($svc.Status) ($(Get-StartType $svc))"
$change = @{ target = "service $name"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
