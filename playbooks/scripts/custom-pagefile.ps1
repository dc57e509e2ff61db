# fleet-script: custom.pagefile
# fleet-version: 1
#
# Example custom check script: page file management, for a playbook `expect:` block.
# Prints ONE frame: <<FLEET-JSON>>{"automatic_managed": bool, "initial_mb": int|null}<<FLEET-END>>
# - automatic_managed: Win32_ComputerSystem.AutomaticManagedPagefile
# - initial_mb: InitialSize (MB) of the first Win32_PageFileSetting; null when there is none
#   (the case when Windows manages the page file), 0 when that file is system-managed.
# ParamsJson is accepted for the common calling convention and not used.
param([Parameter(Mandatory)][string]$ParamsJson)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$system = Get-CimInstance -ClassName Win32_ComputerSystem
$settings = @(Get-CimInstance -ClassName Win32_PageFileSetting)
$initial = $null
if ($settings.Count -gt 0) { $initial = [int]$settings[0].InitialSize }

$result = [ordered]@{
    automatic_managed = [bool]$system.AutomaticManagedPagefile
    initial_mb        = $initial
}
$json = ConvertTo-Json -InputObject $result -Depth 5 -Compress
Write-Output ('<<FLEET-JSON>>' + $json + '<<FLEET-END>>')
