"""Start face_recognition_node on a camera topic.

    ros2 launch face_recog_ros face_recognition.launch.py image_topic:=/camera/image_raw
    ros2 launch face_recog_ros face_recognition.launch.py image_topic:=/camera/image_raw \
        use_compressed:=true namespace:=robot1 params_file:=/path/to/my_params.yaml

The node subscribes `image` (remapped to image_topic), or `<image_topic>/compressed` with
use_compressed:=true, and publishes ~/faces, ~/events, ~/image_annotated (on demand) and
/diagnostics. face_recognition.launch.xml is the same launch file in XML.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory('face_recog_ros'), 'config',
                                  'face_recognition.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='sensor_msgs/Image topic to recognise faces in'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node (and of its ~/ topics and '
                                          'services)'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS parameters YAML (detector, embedder, recognition, '
                                          'gallery, tracking settings)'),
        DeclareLaunchArgument('use_compressed', default_value='false', choices=['true', 'false'],
                              description='Subscribe <image_topic>/compressed (sensor_msgs/'
                                          'CompressedImage) instead of the raw image'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='debug, info, warn, error or fatal'),
        # numpy's BLAS threads would fight the TFLite threads for the same cores.
        SetEnvironmentVariable('OPENBLAS_NUM_THREADS', '1'),
        Node(
            package='face_recog_ros',
            executable='face_recognition_node',
            name='face_recognition_node',
            namespace=LaunchConfiguration('namespace'),
            output='screen',
            emulate_tty=True,
            parameters=[
                LaunchConfiguration('params_file'),
                {'use_compressed': ParameterValue(LaunchConfiguration('use_compressed'),
                                                  value_type=bool)},
            ],
            remappings=[('image', LaunchConfiguration('image_topic'))],
            arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        ),
    ])
