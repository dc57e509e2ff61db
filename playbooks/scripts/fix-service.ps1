# fleet-script: fix.service
# fleet-version: 2
# Starts a service (setting its start type first when asked, e.g. Disabled -> Manual).
# Idempotent: a running service with the right start type is left alone. Reports
# "Status (StartType)" before and after, with the start type names gather.ps1 reports.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$name = [string]$p.name
$wanted = [string]$p.start_type
# Validate everything before changing anything (this used to run after Set-Service).
if ($p.action -ne 'start') { throw "fix.service: unsupported action '$($p.action)'" }
if ($wanted -and @('Automatic', 'Manual') -notcontains $wanted) {
    throw "fix.service: start_type must be Automatic or Manual to start the service, not '$wanted'"
}

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
if ($wanted -and ($beforeType -ne $wanted)) {
    Set-Service -Name $svc.Name -StartupType $wanted
}
if ($svc.Status -ne 'Running') { Start-Service -Name $svc.Name }
$svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($svc.Name))
$after = "$($svc.Status) ($(Get-StartType $svc))"
$change = @{ target = "service $name"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
