set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'
set output 'latency-subscribers.png'
set title 'Latency vs subscribers in one shared subscription (1 publisher at 25 msg/s)'
set xlabel 'subscribers'
set ylabel 'end-to-end latency (ms)'
set logscale y
set logscale x 2
set grid
set key left top
plot 'latency-subscribers.dat' index 0 with linespoints lw 2 dt 1 title 'tmqtt p50', \
  'latency-subscribers.dat' index 1 with linespoints lw 2 dt 2 title 'tmqtt p99', \
  'latency-subscribers.dat' index 2 with linespoints lw 2 dt 1 title 'mosquitto p50', \
  'latency-subscribers.dat' index 3 with linespoints lw 2 dt 2 title 'mosquitto p99', \
  'latency-subscribers.dat' index 4 with linespoints lw 2 dt 1 title 'tmqtt-wasm p50', \
  'latency-subscribers.dat' index 5 with linespoints lw 2 dt 2 title 'tmqtt-wasm p99'
